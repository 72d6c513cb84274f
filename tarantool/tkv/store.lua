-- How pairs are stored and how a write batch is recorded: the `pairs` tuple, revisions,
-- per-owner usage and quotas, storage full, and the change log. Shared by every function
-- that reads or writes pairs (tkv/kv.lua, tkv/expiry.lua); none of it checks access.
--
-- The `pairs` tuple: {namespace, key, value, version, create_version, owner, update_time,
-- expire_time, size} (tkv/schema.lua v6). `value` is MP_BIN (tkv/blobs.lua) or, for pairs
-- from before blobs, native MessagePack; v2 readers get whole tuples and decode in Python,
-- v1 reads only the values.
local blobs = require('tkv.blobs')
local encode = require('msgpack').encode
local watch = require('tkv.watch')

local M = {}

-- Tuple field numbers of `pairs`.
M.VALUE = 3
M.VERSION, M.CREATE_VERSION, M.OWNER, M.UPDATE_TIME, M.EXPIRE_TIME, M.SIZE = 4, 5, 6, 7, 8, 9
local EXPIRE_TIME = M.EXPIRE_TIME
-- What an answer holds per pair besides its key and value (field tags, lengths, versions,
-- owner, times): an upper bound, so that summing `size` + this never underestimates an
-- answer. Cheaper than tuple:bsize() per pair (docs/benchmarks, "What v2 costs").
M.PAIR_OVERHEAD = 96

-- Revision and usage -------------------------------------------------------------------

function M.revision()
    local row = box.space.counters:get('revision')
    return row ~= nil and row.value or 0
end

function M.next_revision()
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
function M.add_usage(owner, pairs, bytes)
    if owner == '' or (pairs == 0 and bytes == 0) then
        return
    end
    box.space.usage:upsert({owner, pairs, bytes}, {{'+', 'pairs', pairs}, {'+', 'bytes', bytes}})
end

-- Whether Tarantool's memory for data has passed `high_water` (a fraction): pair writes
-- are refused from then on, so that accounts, logins, revocations and deletes, which need
-- little memory, always still work.
function M.storage_full(high_water)
    local slab = box.slab.info()
    return slab.arena_used >= high_water * slab.quota_size
end

-- The pair at (namespace, key) in `primary` (box.space.pairs.index.primary, looked up once
-- per call by the caller), or nil. One key table serves every lookup (a get does not
-- yield, so no other fiber sees it in between): a new table per key made Lua's garbage
-- collector a large part of a 100-key read (perf of Tarantool's thread, docs/benchmarks).
local pair_key = {'', ''}
function M.pair_at(primary, ns, key)
    pair_key[1], pair_key[2] = ns, key
    return primary:get(pair_key)
end

function M.is_live(tuple, now)
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
function M.log_event(events, kind, ns, key, value, create_version, owner, expire_time)
    -- A fixarray of 7; the value is a blobs.bin field for PUT, nil (0xc0) otherwise.
    table.insert(events, '\x97' .. encode(kind) .. encode(ns) .. encode(key) .. (value and value.bytes or '\xc0')
        .. encode(create_version) .. encode(owner) .. encode(expire_time))
end

-- Writes a pair tuple encoded in one concatenation: every pair write's hot path, and
-- about half the cost of the generic blobs.encode (docs/benchmarks, "What v2 costs").
function M.write_pair(ns, key, value, version, create_version, owner, update_time, expire_time, size)
    blobs.replace_encoded(box.space.pairs.id, '\x99' .. encode(ns) .. encode(key) .. value.bytes .. encode(version)
        .. encode(create_version) .. encode(owner) .. encode(update_time) .. encode(expire_time) .. encode(size))
end

function M.write_log(revision, events, now)
    blobs.insert(box.space.changes.id, {revision, now, #events, blobs.array(events)})
    box.space.counters:upsert({'changes', #events}, {{'+', 'value', #events}})
    watch.written(revision)
end

-- Sizes charged to quotas: the bytes of the key and of the stored value.
function M.pair_size(key, blob)
    return #key + #blob
end

-- Pending per-owner usage changes of one batch, checked against the quota before writing.
function M.quota_problem(deltas, limits)
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

function M.charge(deltas, owner, pairs_delta, bytes_delta)
    local delta = deltas[owner]
    if delta == nil then
        delta = {pairs = 0, bytes = 0}
        deltas[owner] = delta
    end
    delta.pairs = delta.pairs + pairs_delta
    delta.bytes = delta.bytes + bytes_delta
end

return M
