-- Background fibers that delete state nobody needs any more: revocations of tokens that
-- have expired anyway and failed-login counters idle for a day (every purge interval);
-- expired pairs and changes past the log's age or count (every EXPIRY_SECONDS).
local expiry = require('tkv.expiry')
local fiber = require('fiber')
local log = require('log')
local logins = require('tkv.logins')
local revocations = require('tkv.revocations')

local M = {}

local LOGIN_COUNTER_IDLE_SECONDS = 24 * 3600
-- docs/api.md, "TTL": an expired pair is swept, advancing the revision, within 2 s of its expiry.
local EXPIRY_SECONDS = 0.5
-- Pairs deleted per expiry transaction: a long one would delay every other request.
local EXPIRY_BATCH = 1000

local function purge(what, fn, ...)
    local ok, result = pcall(fn, ...)
    if not ok then
        log.error('tkv: purging %s failed: %s', what, result)
    elseif result > 0 then
        log.info('tkv: purged %d %s', result, what)
    end
end

function M.start(settings)
    fiber.create(function()
        fiber.name('tkv-housekeeping')
        while true do
            fiber.sleep(settings.purge_seconds)
            -- Only a writable instance purges; a replica receives the deletes.
            if not box.info.ro then
                local now = math.floor(fiber.time())
                purge('expired revocations', revocations.purge_expired, now)
                purge('idle login counters', logins.purge_idle, now, LOGIN_COUNTER_IDLE_SECONDS)
            end
        end
    end)
    fiber.create(function()
        fiber.name('tkv-expiry')
        while true do
            fiber.sleep(EXPIRY_SECONDS)
            if not box.info.ro then
                local ok, err = pcall(function()
                    while expiry.sweep_expired(EXPIRY_BATCH) == EXPIRY_BATCH do
                        fiber.yield()
                    end
                    expiry.trim_changes(settings.changes_max_age, settings.changes_max_count)
                end)
                if not ok then
                    log.error('tkv: expiry sweep failed: %s', err)
                end
            end
        end
    end)
end

return M
