-- A node under the failover agent (tkv_ha/agent.py, docs/high-availability.md): the node
-- is writable only while the agent holds leadership in etcd, and fences itself on its own
-- clock. The agent calls these through the admin console; no service user may.
--
-- Why the node keeps its own deadline: the agent renews its etcd lease and then extends
-- the node's writable time to (renewal sent) + TTL - margin. If the agent dies, hangs or
-- loses etcd, nobody extends it, and the fiber below makes the node read-only before the
-- lease can expire for anyone else, whatever the agent is doing. The deadline is absolute,
-- on CLOCK_MONOTONIC (clock.monotonic() here, time.monotonic() in the agent: the same
-- clock on one host), so no delay in delivering it can stretch it; fiber.clock() would
-- not do (it is cached per event-loop iteration).
local clock = require('clock')
local fiber = require('fiber')
local fio = require('fio')
local log = require('log')

local M = {}

-- clock.monotonic() past which this node must take no write; nil while it does not lead.
local writable_until = nil
local wakeup = fiber.cond()
-- Set by init.lua: the master's start-up (migrations, passwords, replication mode), the
-- replication user's URI prefix, and where a requested rebuild is marked.
local on_master = nil
local replication_user = nil
local rebuild_marker = nil
-- The configured synchronous quorum (1: asynchronous), read at start.
local quorum_floor = 1
-- A planned switchover's kept queue: 'settling' while the demoted leader still decides
-- what waits in it, 'settled' once nothing waits (the agent releases leadership only
-- then), nil otherwise.
local queue = nil

function M.configure(options)
    on_master = options.on_master
    replication_user = options.replication_user
    rebuild_marker = options.rebuild_marker
end

-- host:port of each upstream, without the credentials.
local function upstreams()
    local peers = {}
    for _, uri in ipairs(type(box.cfg.replication) == 'table' and box.cfg.replication
                         or {box.cfg.replication}) do
        table.insert(peers, (tostring(uri):gsub('^.*@', '')))
    end
    return peers
end

-- Read-only, and no confirmation of what already waits for a quorum: an acknowledgement
-- arriving late would otherwise confirm a write (and answer its client) after leadership
-- passed on. The highest quorum Tarantool accepts makes every waiting transaction time
-- out and roll back.
local UNREACHABLE_QUORUM = 31

local function fence(why, keep_queue)
    writable_until = nil
    if not box.info.ro then
        box.cfg({read_only = true})
        log.warn('tkv ha: fenced (read-only): %s', why)
    end
    if not keep_queue and quorum_floor > 1 and box.cfg.replication_synchro_quorum ~= UNREACHABLE_QUORUM then
        box.cfg({replication_synchro_quorum = UNREACHABLE_QUORUM})
    end
end

local function fencer()
    fiber.name('tkv.ha.fence')
    while true do
        if writable_until == nil then
            wakeup:wait()
        else
            local left = writable_until - clock.monotonic()
            if left <= 0 then
                fence('the agent did not renew leadership in time')
            else
                -- A sleep never longer than the time left; a stalled transaction thread
                -- delays it by the stall (the margin covers stalls shorter than itself).
                wakeup:wait(left)
            end
        end
    end
end

-- Tarantool 2.6.0 loses acknowledgements of synchronous transactions when more replicas
-- acknowledge than the quorum needs: with quorum 2 and two replicas, plain Tarantool
-- stalled 3-6 of 200 serial writes for the whole replication_synchro_timeout, each with
-- every write queued behind it; with quorum 3 (every replica needed) none of 1,000 did,
-- nor with quorum 2 and one replica (docs/high-availability.md, "Tarantool 2.6.0: what we found"). So the leader
-- asks for the acks of every replica that is keeping up, and never fewer than the
-- configured quorum: the guarantee is the configured quorum's, the quorum in force is
-- only ever stricter. A replica counts while it reported within ACK_SILENCE_SECONDS and
-- has acknowledged everything the leader had BEHIND_SECONDS ago; one that stops (dead, cut
-- off, or stuck) stops counting within about that time, and the writes it held up go
-- through on the others' acknowledgements.
local ADJUST_SECONDS = 0.05
local ACK_SILENCE_SECONDS = 0.75
local BEHIND_SECONDS = 0.5
-- This node's own LSN every ADJUST_SECONDS over the last BEHIND_SECONDS: a replica keeps
-- up if it has acknowledged what this node had written BEHIND_SECONDS ago. Time, not a
-- row count: a replica that stops acknowledging while writes wait for it falls behind
-- by time even though no new row gets written.
local own_lsns = {}

local function lsn_behind()
    local now, own = fiber.clock(), box.info.vclock[box.info.id] or 0
    table.insert(own_lsns, {now, own})
    while #own_lsns > 1 and own_lsns[2][1] <= now - BEHIND_SECONDS do
        table.remove(own_lsns, 1)
    end
    return own_lsns[1][1] <= now - BEHIND_SECONDS and own_lsns[1][2] or 0
end

local function keeping_up()
    local target = lsn_behind()
    local count = 0
    for _, r in pairs(box.info.replication) do
        local down = r.downstream
        if down ~= nil and down.status == 'follow' and (down.idle or math.huge) < ACK_SILENCE_SECONDS then
            local acked = down.vclock ~= nil and down.vclock[box.info.id] or 0
            if acked >= target then
                count = count + 1
            end
        end
    end
    return count
end

local function quorum_keeper()
    fiber.name('tkv.ha.quorum')
    while true do
        fiber.sleep(ADJUST_SECONDS)
        if writable_until ~= nil and quorum_floor > 1 then
            local wanted = math.max(quorum_floor, keeping_up() + 1)
            if box.cfg.replication_synchro_quorum ~= wanted then
                box.cfg({replication_synchro_quorum = wanted})
            end
        else
            own_lsns = {}
        end
    end
end

function M.start()
    quorum_floor = box.cfg.replication_synchro_quorum
    fiber.create(fencer)
    fiber.create(quorum_keeper)
end

-- The node's state for the agent: everything it decides on, read in one call.
function M.state()
    local vclock = {}
    for id, lsn in pairs(box.info.vclock) do
        if id ~= 0 then
            vclock[tostring(id)] = lsn
        end
    end
    local links = {}
    for id, r in pairs(box.info.replication) do
        if id ~= box.info.id and r.upstream ~= nil then
            links[tostring(id)] = {status = r.upstream.status, lag = r.upstream.lag, idle = r.upstream.idle}
        end
    end
    return {
        id = box.info.id,
        uuid = box.info.uuid,
        replicaset = box.info.cluster.uuid,
        ro = box.info.ro,
        status = box.info.status,
        vclock = vclock,
        registered = box.space._cluster:len(),
        -- The configured quorum: what every confirmed transaction is sure to have.
        sync_quorum = quorum_floor,
        quorum_in_force = box.cfg.replication_synchro_quorum,
        sync = box.space.pairs ~= nil and box.space.pairs.is_sync or false,
        follows = upstreams(),
        writable_for = writable_until and math.max(writable_until - clock.monotonic(), 0) or 0,
        -- A planned switchover's kept queue is settled: this node writes nothing more.
        queue_settled = queue == 'settled',
        upstreams = links,
    }
end

-- Extends the writable time to `deadline` (clock.monotonic(), a renewed lease); whether
-- the node is writable (false: it has fenced itself, the agent must step down).
function M.hold(deadline)
    if writable_until ~= nil then
        writable_until = deadline
        wakeup:signal()
    end
    return not box.info.ro
end

-- Leadership won, and the agent has checked that this node holds every confirmed row.
-- It stops following anyone (a leader takes rows from no one: an old master that comes
-- back can never hand it rows the quorum did not confirm), settles the synchronous queue
-- the old master left, then takes writes until `deadline` unless renewed (renewals apply
-- meanwhile). A deadline already past makes it refuse: leadership was lost meanwhile.
-- Migrations and passwords run here, where the node is first writable: an upgrade
-- happens on the first promotion after it.
function M.promote(deadline)
    queue = nil
    writable_until = deadline
    wakeup:signal()
    box.cfg({replication = {}})
    -- The old master's transactions still waiting here for a quorum: every one of them is
    -- on this node and on the old master, which is a quorum of the configured two (and
    -- the agent checked no replica has more). So all of them are confirmed, as Raft's new
    -- leader commits its whole log: with quorum 1 clear_synchro_queue() confirms what
    -- this node holds. Tarantool 2.6.0 first waits twice replication_synchro_timeout for
    -- the old master's own verdict, which will not come (it is dead or fenced, and this
    -- node follows no one now): the short timeout skips that wait.
    local timeout = box.cfg.replication_synchro_timeout
    box.cfg({replication_synchro_quorum = 1, replication_synchro_timeout = 0.001})
    box.ctl.clear_synchro_queue()
    box.cfg({replication_synchro_quorum = quorum_floor, replication_synchro_timeout = timeout})
    if writable_until == nil or clock.monotonic() >= writable_until then
        fence('leadership ran out while promoting')
        return false
    end
    box.cfg({read_only = false})
    if on_master ~= nil then
        on_master()
    end
    return not box.info.ro
end

-- Lost leadership: read-only at once, and nothing waiting is confirmed any more. A
-- planned switchover keeps the queue (`keep_queue`): its writes are confirmed as usual
-- while the leader still holds the lease, and the target waits for them.
function M.demote(why, keep_queue)
    fence(why or 'demoted by the agent', keep_queue)
    if keep_queue and queue == nil then
        queue = 'settling'
        fiber.create(function()
            fiber.name('tkv.ha.settle')
            -- Waits until every transaction in this node's queue is confirmed (or rolled
            -- back) by this node itself, which writes the CONFIRM: its last rows. Until
            -- then the node still writes, so a target that holds "all" of its vclock may
            -- lack a CONFIRM to come: promoted, it would decide those transactions on its
            -- own, and the two histories part (seen as ER_TUPLE_FOUND in `changes` and as
            -- replicas rebuilt while the new leader's writes waited for a quorum).
            -- box.ctl.clear_synchro_queue() cannot wait for that here: on the queue's owner
            -- Tarantool 2.6.0 returns from it at once, a write still waiting (measured). A
            -- write to a replica-local space can: allowed on a read-only node, it queues
            -- behind every transaction before it and comes back (committed, or rolled back
            -- with them) only once they are all decided. It writes no row a replica gets.
            -- The space exists: only a leader is demoted, and every promotion runs the
            -- migrations first (init.lua on_master), schema step v11 among them.
            local barrier = box.space.ha_barrier
            pcall(barrier.replace, barrier, {1})
            if queue == 'settling' then
                queue = 'settled'
                log.info('tkv ha: the kept queue is settled')
            end
        end)
    end
    return box.info.ro
end

-- Replicate from no one: the agent compares this node's vclock with a new leader's only
-- once nothing more can arrive from the old one.
function M.unfollow()
    if #upstreams() > 0 then
        box.cfg({replication = {}})
    end
    return true
end

-- Replicate from the leader only (host:port), once the agent has checked this node holds
-- nothing the leader lacks.
function M.follow(address)
    local current = upstreams()
    if #current ~= 1 or current[1] ~= address then
        box.cfg({replication = {replication_user .. address}})
        log.info('tkv ha: following %s', address)
    end
    return true
end

-- What this node has past the leader's vclock (`leader`: {"<replica id>": lsn}), which a
-- rebuild discards, for the log: how many rows, their LSN range per replica id and their
-- spaces, never keys or values.
function M.rows_past(leader)
    local xlog = require('xlog')
    local summary = {rows = 0, lsns = {}, spaces = {}}
    for _, path in ipairs(fio.glob(fio.pathjoin(box.cfg.wal_dir, '*.xlog'))) do
        for _, row in xlog.pairs(path) do
            local header, body = row.HEADER, row.BODY
            if header ~= nil and header.lsn ~= nil and header.replica_id ~= nil
                    and header.lsn > (leader[tostring(header.replica_id)] or 0) then
                summary.rows = summary.rows + 1
                local id = tostring(header.replica_id)
                local range = summary.lsns[id] or {header.lsn, header.lsn}
                summary.lsns[id] = {math.min(range[1], header.lsn), math.max(range[2], header.lsn)}
                local space = body and body.space_id and box.space[body.space_id]
                if space ~= nil then
                    summary.spaces[space.name] = (summary.spaces[space.name] or 0) + 1
                end
            end
        end
    end
    return summary
end

-- Diverged from the leader: mark the work dir for a rebuild and stop; the supervisor's
-- restart moves it aside (init.lua) and the node joins the leader afresh.
function M.rebuild(why)
    local file = fio.open(rebuild_marker, {'O_WRONLY', 'O_CREAT', 'O_TRUNC'}, tonumber('600', 8))
    file:write(why)
    file:close()
    log.warn('tkv ha: rebuilding from the leader: %s', why)
    fiber.create(function()
        fiber.sleep(0.1)
        os.exit(0)
    end)
    return true
end

return M
