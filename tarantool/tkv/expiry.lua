-- Expiry (docs/api.md, "TTL") and the change log's limits: what tkv/housekeeping.lua's
-- fiber deletes, a bounded transaction at a time, on a writable instance.
local fiber = require('fiber')
local store = require('tkv.store')

local M = {}

local OWNER, CREATE_VERSION, EXPIRE_TIME, SIZE = store.OWNER, store.CREATE_VERSION, store.EXPIRE_TIME, store.SIZE

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
        local revision, events = store.next_revision(), {}
        for _, old in ipairs(expired) do
            box.space.pairs:delete({old[1], old[2]})
            store.add_usage(old[OWNER], -1, -old[SIZE])
            store.log_event(events, 'EXPIRE', old[1], old[2], nil, old[CREATE_VERSION], old[OWNER], old[EXPIRE_TIME])
        end
        store.write_log(revision, events, now)
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
