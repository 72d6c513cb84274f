-- Pairs in namespaces: the rules that must hold under concurrency (namespace access,
-- ownership in `shared`, version conditions, quotas, storage full), checked in the same
-- call, without yielding, as the writes they guard. Called by tkv/api.lua once the
-- caller's token has been checked; `caller` is the login as registered (the token's sub).
--
-- The `pairs` tuple: {namespace, key, value, version, create_version, owner, update_time,
-- expire_time, size} (tkv/schema.lua v6). `value` is MP_BIN (tkv/blobs.lua) or, for pairs
-- from before blobs, native MessagePack; v2 readers get whole tuples and decode in Python,
-- v1 reads only the values.
local blobs = require('tkv.blobs')
local fiber = require('fiber')
local encode = require('msgpack').encode
local watch = require('tkv.watch')

local M = {}

-- The namespace of the v1 store, as stored: no login is empty, so no user's namespace
-- (their login in lower case) can ever be it, not even a user called "shared".
M.SHARED = ''
-- Tuple field numbers of `pairs`.
local VALUE = 3
local VERSION, CREATE_VERSION, OWNER, UPDATE_TIME, EXPIRE_TIME, SIZE = 4, 5, 6, 7, 8, 9
-- `expected` when a request gives no condition (msgpack arrays cannot hold nil).
local NO_CONDITION = -1
-- What an answer holds per pair besides its key and value (field tags, lengths, versions,
-- owner, times): an upper bound, so that summing `size` + this never underestimates an
-- answer. Cheaper than tuple:bsize() per pair (docs/benchmarks, "What v2 costs").
local PAIR_OVERHEAD = 96

-- Namespaces ---------------------------------------------------------------------------

-- The stored namespace a request names: `shared`, `me`, or a login in any letter case
-- (logins are ASCII letters and digits, so lower() is their case folding).
local function namespace_of(caller, name)
    if name == 'shared' then
        return M.SHARED
    elseif name == 'me' then
        return caller:lower()
    end
    return name:lower()
end

-- How `caller` may use namespace `ns`: true for `shared` and their own (the rules of
-- each apply), the grants they hold on it ({namespace, grantee, prefix, role, time}
-- tuples, docs/api.md, "Sharing"), or nil: no access at all. Looked up in the same call as
-- the data, so a grant or revocation counts from the very next call.
local function access_of(caller, ns)
    if ns == M.SHARED or ns == caller:lower() then
        return true
    end
    local held = box.space.grants:select({ns, caller})
    return #held > 0 and held or nil
end

-- Whether one of `held` lets its holder read (or, with `writing`, write) `key`; for a
-- prefix (List, Watch): every key under it.
local function covers(held, key, writing)
    for _, grant in ipairs(held) do
        local prefix = grant[3]
        if (not writing or grant[4] == 'WRITER') and key:sub(1, #prefix) == prefix then
            return true
        end
    end
    return false
end

-- nil when `caller` may read (`writing`: write) every key in `ns` of `keys` (strings, or
-- request items whose first field is the key); otherwise the refusal: 'denied' for a
-- namespace they may not use at all (the same answer whether or not it exists),
-- 'not_granted' with the keys their grants do not cover.
local function refusal(caller, ns, ns_name, keys, writing)
    local access = access_of(caller, ns)
    if access == true then
        return nil
    elseif access == nil then
        return {'denied', ns_name}
    end
    local outside = {}
    for _, entry in ipairs(keys) do
        local key = type(entry) == 'table' and entry[1] or entry
        if not covers(access, key, writing) then
            table.insert(outside, key)
        end
    end
    if #outside > 0 then
        return {'not_granted', ns_name, writing and 'write' or 'read', outside}
    end
    return nil
end

-- Revision and usage -------------------------------------------------------------------

function M.revision()
    local row = box.space.counters:get('revision')
    return row ~= nil and row.value or 0
end

local function next_revision()
    local revision = M.revision() + 1
    box.space.counters:replace({'revision', revision})
    return revision
end

local function usage_of(owner)
    local row = box.space.usage:get(owner)
    if row == nil then
        return 0, 0
    end
    return row.pairs, row.bytes
end

-- Owners of pairs from before v2 (and of deleted accounts) are '' and count for nobody.
local function add_usage(owner, pairs, bytes)
    if owner == '' or (pairs == 0 and bytes == 0) then
        return
    end
    box.space.usage:upsert({owner, pairs, bytes}, {{'+', 'pairs', pairs}, {'+', 'bytes', bytes}})
end

-- Whether Tarantool's memory for data has passed `high_water` (a fraction): pair writes
-- are refused from then on, so that accounts, logins, revocations and deletes, which need
-- little memory, always still work.
local function storage_full(high_water)
    local slab = box.slab.info()
    return slab.arena_used >= high_water * slab.quota_size
end

-- The pair at (namespace, key) in `primary` (box.space.pairs.index.primary, looked up once
-- per call by the caller), or nil. One key table serves every lookup (a get does not
-- yield, so no other fiber sees it in between): a new table per key made Lua's garbage
-- collector a large part of a 100-key read (perf of Tarantool's thread, docs/benchmarks).
local pair_key = {'', ''}
local function pair_at(primary, ns, key)
    pair_key[1], pair_key[2] = ns, key
    return primary:get(pair_key)
end

local function is_live(tuple, now)
    if tuple == nil then
        return false
    end
    local expire_time = tuple[EXPIRE_TIME]  -- a field read is a call into Tarantool: once
    return expire_time == 0 or expire_time > now
end

-- The change log Watch reads (tkv/schema.lua v6): one row per write batch, {revision,
-- time, count, events}, each event [type, namespace, key, value, create_version, owner,
-- expire_time] with the value as MP_BIN for PUT and nil otherwise. A row per batch, not per
-- pair: a row per pair made every pair write cost half again as much (docs/benchmarks).
local function log_event(events, kind, ns, key, value, create_version, owner, expire_time)
    -- A fixarray of 7; the value is a blobs.bin field for PUT, nil (0xc0) otherwise.
    table.insert(events, '\x97' .. encode(kind) .. encode(ns) .. encode(key) .. (value and value.bytes or '\xc0')
        .. encode(create_version) .. encode(owner) .. encode(expire_time))
end

-- Writes a pair tuple encoded in one concatenation: every pair write's hot path, and
-- about half the cost of the generic blobs.encode (docs/benchmarks, "What v2 costs").
local function write_pair(ns, key, value, version, create_version, owner, update_time, expire_time, size)
    blobs.replace_encoded(box.space.pairs.id, '\x99' .. encode(ns) .. encode(key) .. value.bytes .. encode(version)
        .. encode(create_version) .. encode(owner) .. encode(update_time) .. encode(expire_time) .. encode(size))
end

local function write_log(revision, events, now)
    blobs.insert(box.space.changes.id, {revision, now, #events, blobs.array(events)})
    box.space.counters:upsert({'changes', #events}, {{'+', 'value', #events}})
    watch.written(revision)
end

-- Sizes charged to quotas: the bytes of the key and of the stored value.
local function pair_size(key, blob)
    return #key + #blob
end

-- Pending per-owner usage changes of one batch, checked against the quota before writing.
local function quota_problem(deltas, limits)
    for owner, delta in pairs(deltas) do
        if owner ~= '' and (delta.pairs > 0 or delta.bytes > 0) then
            local used_pairs, used_bytes = usage_of(owner)
            if delta.pairs > 0 and used_pairs + delta.pairs > limits.max_pairs then
                return {owner, 'pairs', used_pairs, delta.pairs, limits.max_pairs}
            end
            if delta.bytes > 0 and used_bytes + delta.bytes > limits.max_bytes then
                return {owner, 'bytes', used_bytes, delta.bytes, limits.max_bytes}
            end
        end
    end
    return nil
end

local function charge(deltas, owner, pairs_delta, bytes_delta)
    local delta = deltas[owner]
    if delta == nil then
        delta = {pairs = 0, bytes = 0}
        deltas[owner] = delta
    end
    delta.pairs = delta.pairs + pairs_delta
    delta.bytes = delta.bytes + bytes_delta
end

-- v1: the shared store -------------------------------------------------------------------

-- The pairs of `keys` in request order, or 'missing' with every absent (or expired) key,
-- or 'too_large' with the answer's size when it would pass `max_bytes` (checked before
-- anything is sent, so a service never builds an answer it must refuse).
--
-- With `values_only`, one tuple of the values alone instead of the pair tuples: the caller
-- knows the keys, and decoding the nine fields of each pair tuple cost kv_svc ~12 % more
-- instructions per 100-key Read than v1 before v2 (the values' bytes are copied, not
-- decoded: docs/benchmarks, "v1 against v1 before v2"). Without it, the pair tuples, as
-- kv_svc of earlier releases expects while an upgrade replaces it.
function M.v1_read(_, keys, max_bytes, values_only)
    local primary, now = box.space.pairs.index.primary, fiber.time()
    local found, missing, size = {}, {}, 0
    for i, key in ipairs(keys) do
        local tuple = pair_at(primary, M.SHARED, key)
        if is_live(tuple, now) then
            found[i] = tuple
            size = size + tuple[SIZE] + PAIR_OVERHEAD
        else
            table.insert(missing, key)
        end
    end
    if #missing > 0 then
        return 'missing', missing
    end
    if size > max_bytes then
        return 'too_large', size, max_bytes
    end
    if values_only then
        return 'ok', blobs.fields_tuple(found, VALUE)
    end
    return 'ok', found
end

-- Inserts every {key, value} whose key is absent (or expired) in `shared`, owned by the
-- caller, all in one transaction; returns the keys that already existed, in request
-- order. Memtx runs this without yielding, so of two concurrent writers of one new key
-- exactly one inserts it.
function M.v1_write(caller, items, limits)
    for i, item in ipairs(items) do
        if type(item[1]) ~= 'string' or type(item[2]) ~= 'string' then
            box.error(box.error.PROC_LUA, ('pair %d is not {key, encoded value}'):format(i))
        end
    end
    if storage_full(limits.high_water) then
        return 'full'
    end
    local primary, now = box.space.pairs.index.primary, fiber.time()
    local skipped, writes, deltas = {}, {}, {}
    for _, item in ipairs(items) do
        local key, blob = item[1], item[2]
        local old = pair_at(primary, M.SHARED, key)
        if is_live(old, now) then
            table.insert(skipped, key)
        else
            if old ~= nil then
                charge(deltas, old[OWNER], -1, -old[SIZE])
            end
            charge(deltas, caller, 1, pair_size(key, blob))
            table.insert(writes, {key, blob, old})
        end
    end
    if #writes == 0 then
        return 'ok', skipped
    end
    local problem = quota_problem(deltas, limits)
    if problem ~= nil then
        return 'quota', problem
    end
    box.atomic(function()
        local revision, events = next_revision(), {}
        for _, write in ipairs(writes) do
            local key, blob = write[1], write[2]
            local value = blobs.bin(blob)
            write_pair(M.SHARED, key, value, revision, revision, caller, now, 0, pair_size(key, blob))
            log_event(events, 'PUT', M.SHARED, key, value, revision, caller, 0)
        end
        write_log(revision, events, now)
        for owner, delta in pairs(deltas) do
            add_usage(owner, delta.pairs, delta.bytes)
        end
    end)
    return 'ok', skipped
end

-- v2 ---------------------------------------------------------------------------------

-- The live pairs of `keys` in request order and the absent ones, with the revision they
-- were read at; 'denied' for a namespace the caller may not use; 'too_large' as v1_read.
function M.get(caller, ns_name, keys, max_bytes)
    local ns = namespace_of(caller, ns_name)
    local refused = refusal(caller, ns, ns_name, keys, false)
    if refused ~= nil then
        return unpack(refused)
    end
    local primary, now = box.space.pairs.index.primary, fiber.time()
    local found, missing, size = {}, {}, 0
    for _, key in ipairs(keys) do
        local tuple = pair_at(primary, ns, key)
        if is_live(tuple, now) then
            table.insert(found, tuple)
            size = size + tuple[SIZE] + PAIR_OVERHEAD
        else
            table.insert(missing, key)
        end
    end
    if size > max_bytes then
        return 'too_large', size, max_bytes
    end
    return 'ok', found, missing, M.revision()
end

-- Creates or replaces every item {key, value, expected_version, ttl_seconds} (-1: no
-- condition; 0: no expiry) in one transaction, or nothing:
--   'denied'              the namespace is not the caller's to use
--   'not_granted', ns, 'write', keys   keys the caller's grants do not let them write
--   'full'                storage is past its high-water mark
--   'not_owner', keys     pairs in `shared` that someone else owns
--   'mismatch', {{key, current version (0 = absent)}, ...}
--   'quota', {owner, 'pairs'|'bytes', used, adding, limit}
-- Otherwise 'ok', the new revision and the time written.
function M.put(caller, ns_name, items, limits)
    local ns = namespace_of(caller, ns_name)
    local refused = refusal(caller, ns, ns_name, items, true)
    if refused ~= nil then
        return unpack(refused)
    end
    if storage_full(limits.high_water) then
        return 'full'
    end
    local primary, now = box.space.pairs.index.primary, fiber.time()
    local olds, not_owned, mismatches, deltas = {}, {}, {}, {}
    for i, item in ipairs(items) do
        local key, blob, expected = item[1], item[2], item[3]
        local old = pair_at(primary, ns, key)
        local live = is_live(old, now)
        if live and ns == M.SHARED and old[OWNER] ~= caller then
            table.insert(not_owned, key)
        end
        local current = live and old[VERSION] or 0
        if expected ~= NO_CONDITION and expected ~= current then
            table.insert(mismatches, {key, current})
        end
        local size = pair_size(key, blob)
        if live then
            charge(deltas, old[OWNER], 0, size - old[SIZE])
        else
            if old ~= nil then
                charge(deltas, old[OWNER], -1, -old[SIZE])
            end
            charge(deltas, caller, 1, size)
        end
        olds[i] = live and old or false
    end
    if #not_owned > 0 then
        return 'not_owner', not_owned
    end
    if #mismatches > 0 then
        return 'mismatch', mismatches
    end
    local problem = quota_problem(deltas, limits)
    if problem ~= nil then
        return 'quota', problem
    end
    local revision
    box.atomic(function()
        revision = next_revision()
        local events = {}
        for i, item in ipairs(items) do
            local key, blob, ttl = item[1], item[2], item[4]
            local old = olds[i]
            local create_version = old and old[CREATE_VERSION] or revision
            local owner = old and old[OWNER] or caller
            local expire_time = ttl > 0 and now + ttl or 0
            local value = blobs.bin(blob)
            write_pair(ns, key, value, revision, create_version, owner, now, expire_time, pair_size(key, blob))
            log_event(events, 'PUT', ns, key, value, create_version, owner, expire_time)
        end
        write_log(revision, events, now)
        for owner, delta in pairs(deltas) do
            add_usage(owner, delta.pairs, delta.bytes)
        end
    end)
    return 'ok', revision, now
end

-- Deletes every item {key, expected_version} (-1: no condition) that exists, in one
-- transaction, or nothing: 'denied', 'not_owner' and 'mismatch' as put. Otherwise 'ok',
-- the revision (unchanged when nothing was deleted) and the absent keys.
function M.delete(caller, ns_name, items)
    local ns = namespace_of(caller, ns_name)
    local refused = refusal(caller, ns, ns_name, items, true)
    if refused ~= nil then
        return unpack(refused)
    end
    local space, now = box.space.pairs, fiber.time()
    local primary = space.index.primary
    local doomed, missing, not_owned, mismatches = {}, {}, {}, {}
    for _, item in ipairs(items) do
        local key, expected = item[1], item[2]
        local old = pair_at(primary, ns, key)
        local live = is_live(old, now)
        local current = live and old[VERSION] or 0
        if expected ~= NO_CONDITION and expected ~= current then
            table.insert(mismatches, {key, current})
        elseif not live then
            table.insert(missing, key)
        elseif ns == M.SHARED and old[OWNER] ~= caller then
            table.insert(not_owned, key)
        else
            table.insert(doomed, old)
        end
    end
    if #not_owned > 0 then
        return 'not_owner', not_owned
    end
    if #mismatches > 0 then
        return 'mismatch', mismatches
    end
    if #doomed == 0 then
        return 'ok', M.revision(), missing
    end
    local revision
    box.atomic(function()
        revision = next_revision()
        local events = {}
        for _, old in ipairs(doomed) do
            space:delete({ns, old[2]})
            add_usage(old[OWNER], -1, -old[SIZE])
            log_event(events, 'DELETE', ns, old[2], nil, old[CREATE_VERSION], old[OWNER], old[EXPIRE_TIME])
        end
        write_log(revision, events, now)
    end)
    return 'ok', revision, missing
end

-- One page of live pairs of namespace `ns_name` whose keys start with `prefix`, in key
-- order, after key `after` ('' and `first` = true: from the prefix on): at most `limit`,
-- fewer when their size would pass `max_bytes` (never none while any remain). Returns
-- 'ok', the pairs, whether more follow, and the revision. With `keys_only` the value
-- field is nil.
function M.list(caller, ns_name, prefix, after, first, limit, keys_only, max_bytes)
    local ns = namespace_of(caller, ns_name)
    local refused = refusal(caller, ns, ns_name, {prefix}, false)
    if refused ~= nil then
        return unpack(refused)
    end
    local now = fiber.time()
    local found, size, more = {}, 0, false
    local from, iterator = {ns, after}, 'GT'
    if first then
        from, iterator = {ns, prefix}, 'GE'
    end
    for _, tuple in box.space.pairs.index.primary:pairs(from, {iterator = iterator}) do
        local key = tuple[2]
        if tuple[1] ~= ns or key:sub(1, #prefix) ~= prefix then
            break
        end
        if is_live(tuple, now) then
            local item = tuple
            if keys_only then
                item = {ns, key, box.NULL, tuple[VERSION], tuple[CREATE_VERSION], tuple[OWNER], tuple[UPDATE_TIME],
                        tuple[EXPIRE_TIME], tuple[SIZE]}
            end
            local item_size = keys_only and #key + PAIR_OVERHEAD or tuple[SIZE] + PAIR_OVERHEAD
            if #found >= limit or (#found > 0 and size + item_size > max_bytes) then
                more = true
                break
            end
            table.insert(found, item)
            size = size + item_size
        end
    end
    return 'ok', found, more, M.revision()
end

-- Accounts ------------------------------------------------------------------------------

-- What goes with an account (docs/api.md, "v2 accounts"), inside the caller's transaction: the
-- pairs of its namespace (deleted as one write batch, so watchers see DELETE events),
-- the grants of and to it, and its usage; the pairs it created in `shared` stay, owner
-- unknown. Returns how many pairs were deleted.
function M.delete_account(login)
    local ns = login:lower()
    local space, now = box.space.pairs, fiber.time()
    local doomed = space:select({ns})
    if #doomed > 0 then
        local revision, events = next_revision(), {}
        for _, old in ipairs(doomed) do
            space:delete({ns, old[2]})
            if old[OWNER] ~= login then  -- written by a grantee: it counted for them
                add_usage(old[OWNER], -1, -old[SIZE])
            end
            log_event(events, 'DELETE', ns, old[2], nil, old[CREATE_VERSION], old[OWNER], old[EXPIRE_TIME])
        end
        write_log(revision, events, now)
    end
    -- The pairs it created elsewhere (in `shared`, and by grant in others' namespaces,
    -- also under grants revoked since) stay, owner unknown. A scan of every pair, not an
    -- index on owner: such an index made every pair write dearer (docs/benchmarks, "What
    -- v2 costs") for the sake of this rare call.
    local owned = {}
    for _, pair in space:pairs() do
        if pair[OWNER] == login then
            table.insert(owned, {pair[1], pair[2]})
        end
    end
    for _, key in ipairs(owned) do
        space:update(key, {{'=', OWNER, ''}})
    end
    for _, grant in ipairs(box.space.grants:select({ns})) do
        box.space.grants:delete({grant[1], grant[2], grant[3]})
    end
    for _, grant in ipairs(box.space.grants.index.grantee:select({login})) do
        box.space.grants:delete({grant[1], grant[2], grant[3]})
    end
    box.space.usage:delete(login)
    return #doomed
end

-- Sharing (docs/api.md, "Sharing") -----------------------------------------------------------

local ROLES = {READER = true, WRITER = true}

-- Grants are the owner's alone to give: their own namespace, nobody else's, not `shared`.
local function own_namespace(caller, ns_name)
    local ns = namespace_of(caller, ns_name)
    return ns == caller:lower() and ns or nil
end

-- Gives `grantee` `role` on the keys of the caller's namespace that start with `prefix`
-- ('' = all of them), replacing the role of an existing grant on the same prefix.
-- 'denied' for a namespace not the caller's, 'no_grantee' for an unknown login,
-- 'self_grant' for the caller themselves; otherwise 'ok' and the grant.
function M.create_grant(caller, ns_name, grantee, role, prefix)
    local ns = own_namespace(caller, ns_name)
    if ns == nil then
        return 'denied', ns_name
    end
    if not ROLES[role] then
        box.error(box.error.PROC_LUA, 'unknown role ' .. tostring(role))
    end
    local user = box.space.users:get(grantee)
    if user == nil then
        return 'no_grantee', grantee
    end
    if user.login:lower() == ns then
        return 'self_grant'
    end
    local grant = box.space.grants:replace({ns, user.login, prefix, role, fiber.time()})
    -- A WRITER made a READER keeps reading: no open watch depends on the difference.
    return 'ok', grant
end

-- The grants given on the caller's namespace, by grantee and prefix.
function M.list_grants(caller, ns_name)
    local ns = own_namespace(caller, ns_name)
    if ns == nil then
        return 'denied', ns_name
    end
    return 'ok', box.space.grants:select({ns})
end

-- The grants the caller holds, in every namespace.
function M.received_grants(caller)
    return 'ok', box.space.grants.index.grantee:select({caller})
end

-- Revokes a grant: 'no_grant' when there is none. The grantee's next call is refused,
-- and their open watches that needed it end (tkv/watch.lua signals kv_svc).
function M.delete_grant(caller, ns_name, grantee, prefix)
    local ns = own_namespace(caller, ns_name)
    if ns == nil then
        return 'denied', ns_name
    end
    local gone = box.space.grants:delete({ns, grantee, prefix})
    if gone == nil then
        return 'no_grant', grantee, prefix
    end
    watch.access_changed()
    return 'ok'
end

-- Watch ---------------------------------------------------------------------------------

-- Opens a watch of `caller` on the keys under `prefix` (or the one key `key`, when not
-- nil) in namespace `ns_name`, after revision `start` (0 = from now): access as for List,
-- then 'compacted' and the oldest revision held when the changes after `start` are gone,
-- 'too_many' and the limit when the caller has `max_watches` open. Otherwise 'ok', the
-- watch id (for watch_close), the stored namespace, the revision it starts after, and
-- the access epoch (tkv/watch.lua).
function M.watch_open(caller, ns_name, prefix, key, start, max_watches)
    local ns = namespace_of(caller, ns_name)
    -- A nil from MessagePack is box.NULL, which `or` takes for a value; `==` does not.
    local target = prefix
    if key ~= nil then
        target = key
    end
    local refused = refusal(caller, ns, ns_name, {target}, false)
    if refused ~= nil then
        return unpack(refused)
    end
    if start > 0 and watch.compacted(start) then
        return 'compacted', start, watch.oldest_revision()
    end
    local id = watch.register(caller, max_watches)
    if id == nil then
        return 'too_many', max_watches
    end
    local committed, epoch = watch.position()
    return 'ok', id, ns, start > 0 and start or committed, epoch
end

-- Which open watches may no longer go on, for a kv_svc process told that access changed:
-- `open` holds {id, jti, subject, account_id, token_epoch, namespace, prefix or key} per
-- watch; the answer {id, problem} for each that must end: a token problem ('revoked',
-- 'no_user', 'superseded') or 'denied' (a grant it relied on is gone).
function M.watch_check(open, token_problem)
    local ended = {}
    for _, w in ipairs(open) do
        local problem, user = token_problem(w[2], w[3], w[4], w[5])
        if problem == nil then
            local access = access_of(user.login, w[6])
            if access == nil or (access ~= true and not covers(access, w[7], false)) then
                problem = 'denied'
            end
        end
        if problem ~= nil then
            table.insert(ended, {w[1], problem})
        end
    end
    return ended
end

-- Expiry --------------------------------------------------------------------------------

-- Deletes up to `batch` pairs whose expiry has passed, as one write batch (one revision,
-- EXPIRE changes); returns how many.
function M.sweep_expired(batch)
    local now = fiber.time()
    local index = box.space.pairs.index.expire_time
    local expired = {}
    for _, tuple in index:pairs({0}, {iterator = 'GT'}) do
        if tuple[EXPIRE_TIME] > now or #expired >= batch then
            break
        end
        table.insert(expired, tuple)
    end
    if #expired == 0 then
        return 0
    end
    box.atomic(function()
        local revision, events = next_revision(), {}
        for _, old in ipairs(expired) do
            box.space.pairs:delete({old[1], old[2]})
            add_usage(old[OWNER], -1, -old[SIZE])
            log_event(events, 'EXPIRE', old[1], old[2], nil, old[CREATE_VERSION], old[OWNER], old[EXPIRE_TIME])
        end
        write_log(revision, events, now)
    end)
    return #expired
end

-- Deletes the oldest batches of the change log while it holds more than `max_count`
-- changes or they are older than `max_age` seconds, a transaction per 1000 batches;
-- returns how many batches.
function M.trim_changes(max_age, max_count)
    local changes = box.space.changes
    local cutoff = fiber.time() - max_age
    local purged = 0
    while true do
        local row = box.space.counters:get('changes')
        local held = row ~= nil and row.value or 0
        local doomed, dropped = {}, 0
        for _, batch in changes:pairs() do
            if #doomed >= 1000 or (held - dropped <= max_count and batch[2] >= cutoff) then
                break
            end
            table.insert(doomed, batch[1])
            dropped = dropped + batch[3]
        end
        if #doomed == 0 then
            return purged
        end
        box.atomic(function()
            for _, revision in ipairs(doomed) do
                changes:delete(revision)
            end
            box.space.counters:update('changes', {{'-', 'value', dropped}})
        end)
        purged = purged + #doomed
    end
end

return M
