-- Pairs in namespaces, v1 and v2: the rules that must hold under concurrency (namespace
-- access, ownership in `shared`, version conditions, quotas, storage full), checked in the
-- same call, without yielding, as the writes they guard. Called by tkv/api.lua once the
-- caller's token has been checked; `caller` is the login as registered (the token's sub).
-- How pairs are stored and batches recorded is tkv/store.lua's; who may use a namespace,
-- tkv/access.lua's.
local access = require('tkv.access')
local blobs = require('tkv.blobs')
local fiber = require('fiber')
local sharing = require('tkv.sharing')
local store = require('tkv.store')

local M = {}

local SHARED = access.SHARED
local VALUE, VERSION, CREATE_VERSION, OWNER = store.VALUE, store.VERSION, store.CREATE_VERSION, store.OWNER
local UPDATE_TIME, EXPIRE_TIME, SIZE = store.UPDATE_TIME, store.EXPIRE_TIME, store.SIZE
local PAIR_OVERHEAD = store.PAIR_OVERHEAD
-- Locals, not store.x per call: the hot paths of every read and write.
local pair_at, is_live, pair_size, charge = store.pair_at, store.is_live, store.pair_size, store.charge
local log_event, write_pair, write_log = store.log_event, store.write_pair, store.write_log
local next_revision, add_usage = store.next_revision, store.add_usage
-- `expected` when a request gives no condition (msgpack arrays cannot hold nil).
local NO_CONDITION = -1

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
        local tuple = pair_at(primary, SHARED, key)
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
    if store.storage_full(limits.high_water) then
        return 'full'
    end
    local primary, now = box.space.pairs.index.primary, fiber.time()
    local skipped, writes, deltas = {}, {}, {}
    for _, item in ipairs(items) do
        local key, blob = item[1], item[2]
        local old = pair_at(primary, SHARED, key)
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
    local problem = store.quota_problem(deltas, limits)
    if problem ~= nil then
        return 'quota', problem
    end
    box.atomic(function()
        local revision, events = next_revision(), {}
        for _, write in ipairs(writes) do
            local key, blob = write[1], write[2]
            local value = blobs.bin(blob)
            write_pair(SHARED, key, value, revision, revision, caller, now, 0, pair_size(key, blob))
            log_event(events, 'PUT', SHARED, key, value, revision, caller, 0)
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
    local ns, refused = access.check(caller, ns_name, keys, false)
    if ns == nil then
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
    return 'ok', found, missing, store.revision()
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
    local ns, refused = access.check(caller, ns_name, items, true)
    if ns == nil then
        return unpack(refused)
    end
    if store.storage_full(limits.high_water) then
        return 'full'
    end
    local primary, now = box.space.pairs.index.primary, fiber.time()
    local olds, not_owned, mismatches, deltas = {}, {}, {}, {}
    for i, item in ipairs(items) do
        local key, blob, expected = item[1], item[2], item[3]
        local old = pair_at(primary, ns, key)
        local live = is_live(old, now)
        if live and ns == SHARED and old[OWNER] ~= caller then
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
    local problem = store.quota_problem(deltas, limits)
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
    local ns, refused = access.check(caller, ns_name, items, true)
    if ns == nil then
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
        elseif ns == SHARED and old[OWNER] ~= caller then
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
        return 'ok', store.revision(), missing
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
    local ns, refused = access.check(caller, ns_name, {prefix}, false)
    if ns == nil then
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
    return 'ok', found, more, store.revision()
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
    sharing.forget(ns, login)
    box.space.usage:delete(login)
    return #doomed
end

return M
