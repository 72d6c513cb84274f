-- A background fiber that deletes state nobody needs any more: revocations of tokens that
-- have expired anyway, and failed-login counters idle for a day.
local fiber = require('fiber')
local log = require('log')
local logins = require('tkv.logins')
local revocations = require('tkv.revocations')

local M = {}

local LOGIN_COUNTER_IDLE_SECONDS = 24 * 3600

local function purge(what, fn, ...)
    local ok, result = pcall(fn, ...)
    if not ok then
        log.error('tkv: purging %s failed: %s', what, result)
    elseif result > 0 then
        log.info('tkv: purged %d %s', result, what)
    end
end

function M.start(interval)
    fiber.create(function()
        fiber.name('tkv-housekeeping')
        while true do
            fiber.sleep(interval)
            -- Only a writable instance purges; a replica receives the deletes.
            if not box.info.ro then
                local now = math.floor(fiber.time())
                purge('expired revocations', revocations.purge_expired, now)
                purge('idle login counters', logins.purge_idle, now, LOGIN_COUNTER_IDLE_SECONDS)
            end
        end
    end)
end

return M
