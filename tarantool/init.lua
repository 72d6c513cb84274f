-- Tarantool instance for tkv: configuration from the environment, schema migrations,
-- per-service users and the stored functions the services call.
--
-- Run it as `tarantool tarantool/init.lua`. Every setting has a local default (tkv/config.lua
-- reads them; README.md, "Configuration", lists them under "Tarantool"): the listen address,
-- data, work and secrets dirs, the service users' passwords, memory and tuple limits, purge
-- and change-log intervals, the admin console (`nc -U <path>`), replication and HA
-- (docs/operations.md, docs/high-availability.md).

local fio = require('fio')
local log = require('log')

local here = fio.dirname(fio.abspath(debug.getinfo(1, 'S').source:sub(2)))
package.path = here .. '/?.lua;' .. package.path

local config = require('tkv.config')
local settings = config.from_env()

-- Passwords are read before box.cfg so a missing secret fails start-up before any file
-- is written.
local schema = require('tkv.schema')
local passwords = {}
for _, user in ipairs(schema.SERVICE_USERS) do
    passwords[user] = config.service_password(settings, user)
end
-- The replication user's password, only where replication is configured: this instance
-- serves replicas, or replicates from peers (which it then authenticates to).
local replicating = settings.serve_replicas or #settings.replication > 0
local replication_password = replicating and config.service_password(settings, schema.REPLICATION_USER) or nil

-- Who may call which stored function, from the names tkv/api.lua exports (tkv/rights.lua):
-- worked out now, so that an export the rule does not cover stops the start here.
local api = require('tkv.api')
local rights = require('tkv.rights')
local function_rights = rights.of(api)

local replication = {}
for _, peer in ipairs(settings.replication) do
    table.insert(replication, string.format('%s:%s@%s', schema.REPLICATION_USER, replication_password, peer))
end

local files = require('tkv.files')
files.restrict_new()
local ha = require('tkv.ha')

-- A diverged node is rebuilt from the leader (tkv/ha.lua rebuild): its old files are
-- kept aside for the operator, and it joins afresh. The marker stays until the join has
-- succeeded, so a node whose first join attempt fails never creates a replica set.
local rebuild_marker = settings.work_dir .. '.rebuild'
local rebuilt = settings.ha and fio.path.exists(rebuild_marker)
if rebuilt and #fio.glob(fio.pathjoin(settings.work_dir, '*')) > 0 then
    local aside = string.format('%s.diverged-%d', settings.work_dir, os.time())
    fio.rename(settings.work_dir, aside)
    log.warn('tkv ha: the old work dir is kept in %s; joining the leader afresh', aside)
end
files.secure_work_dir(settings.work_dir)
local fresh = #fio.glob(fio.pathjoin(settings.work_dir, '*.snap')) == 0

-- Under the agent a node starts read-only and follows no one: the agent makes it writable
-- (leadership in etcd) or points it at the leader once it has checked the node's history
-- (tarantool/tkv/ha.lua). Two exceptions, on an empty work dir only: the bootstrapping
-- node is writable to create the replica set, alone, before anyone can connect; any other
-- joins the replica set through whichever peer is writable (the leader).
-- A rebuilt node joins the replica set it left, never creates one.
local bootstrapping = settings.ha and settings.ha_bootstrap and fresh and not rebuilt
local read_only = settings.read_only or (settings.ha and not bootstrapping)
local upstreams = replication
if settings.ha and not (fresh and not bootstrapping) then
    upstreams = {}
end
box.cfg({
    -- No `listen` yet: clients connect only once the schema and functions below exist.
    work_dir = settings.work_dir,
    -- Every acknowledged write is in the WAL before the call returns. 'none' would trade
    -- durability for speed and is never used here.
    wal_mode = 'write',
    memtx_memory = settings.memory_bytes,
    -- The default 1 MiB caps a single value well below the 4 MiB request limit.
    memtx_max_tuple_size = settings.max_tuple_bytes,
    log_format = 'plain',
    replication = upstreams,
    -- A joining HA node waits at most this long for its peers, then joins the one it
    -- reached (or fails, and its supervisor starts it again).
    replication_connect_timeout = settings.ha and 3 or nil,
    replication_connect_quorum = settings.ha and 1 or nil,
    -- HA: heartbeats every 0.25 s, so a leader sees within a second that a replica went
    -- silent (tkv/ha.lua counts the replicas keeping up), and a replica that its leader did.
    replication_timeout = settings.ha and 0.25 or nil,
    read_only = read_only,
    replication_synchro_quorum = math.max(settings.synchro_quorum, 1),
    replication_synchro_timeout = settings.synchro_timeout,
})

local function on_master()
    -- A replica gets the schema, users and passwords from its master.
    schema.migrate()
    rights.apply(function_rights, schema.SERVICE_USERS)
    for user, password in pairs(passwords) do
        -- Set on every start so a rotated secret takes effect with a restart.
        box.schema.user.passwd(user, password)
    end
    schema.set_replication_user(replication_password)
    schema.set_sync(settings.synchro_quorum > 1)
end

if settings.ha then
    if rebuilt then
        fio.unlink(rebuild_marker)
    end
    if bootstrapping then
        -- The schema exists before anyone connects; writes wait for the agent's leadership.
        on_master()
        box.cfg({read_only = true})
    end
    ha.configure({
        on_master = on_master,
        replication_user = string.format('%s:%s@', schema.REPLICATION_USER, replication_password),
        rebuild_marker = rebuild_marker,
    })
    ha.start()
elseif not box.info.ro then
    on_master()
end

-- The stored functions are resolved by IPROTO as globals: `tkv.kv_read` -> _G.tkv.kv_read.
rawset(_G, 'tkv', api)
require('tkv.housekeeping').start(settings)
-- Forgets the open watches of a kv_svc connection that goes away (tkv/watch.lua).
require('tkv.watch').start()
if settings.console_socket ~= nil then
    -- A unix socket only: file permissions, not a password, guard the admin console.
    require('console').listen(settings.console_socket)
    files.secure_socket(settings.console_socket)
end
box.cfg({listen = settings.listen})

log.info('tkv: Tarantool ready on %s, data in %s', settings.listen, settings.work_dir)
