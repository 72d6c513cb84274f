-- Brute-force throttling of logins. State lives here, so it survives restarts and is shared
-- by every auth_svc process.
--
-- Two limits (docs/security.md, "Brute force"):
--   * per login and client address (`login_locks`): after `max_failures` consecutive
--     failures that address is locked out of that login, for `lock_seconds` doubling with
--     every further failure up to `max_lock_seconds`. Another address is not affected, so
--     nobody can lock a user out by guessing at their login.
--   * per login, over every address (`login_rates`): past `login_failures` failures in one
--     `login_window_seconds` window, the login takes at most one attempt every
--     `login_interval_seconds`, whoever sends it. That slows a guessing attack spread over
--     many addresses without locking the user out.
-- An attempt is counted as a failure before its password is checked (by the caller, in the
-- same call), and a success takes it back.
local M = {}

-- The seconds the attempt must wait, or nil when it may go ahead. `t` holds the limits.
function M.wait(login, client, now, t)
    local lock = box.space.login_locks:get({login, client})
    if lock ~= nil and lock.locked_until > now then
        return lock.locked_until - now
    end
    local rate = box.space.login_rates:get(login)
    if rate ~= nil and rate.window_start + t.login_window_seconds > now and rate.failures >= t.login_failures then
        local next_attempt = rate.last_attempt + t.login_interval_seconds
        if next_attempt > now then
            return next_attempt - now
        end
    end
    return nil
end

-- Counts one failure of `login` from `client` against both limits.
function M.count_failure(login, client, now, t)
    local locks = box.space.login_locks
    local lock = locks:get({login, client})
    local failures = (lock and lock.failures or 0) + 1
    local seconds = 0
    if failures >= t.max_failures then
        seconds = math.min(t.lock_seconds * 2 ^ (failures - t.max_failures), t.max_lock_seconds)
    end
    locks:replace({lock and lock.login or login, client, failures, now + seconds, now})

    local rates = box.space.login_rates
    local rate = rates:get(login)
    if rate == nil or rate.window_start + t.login_window_seconds <= now then
        rates:replace({rate and rate.login or login, now, 1, now})
    else
        rates:update(login, {{'+', 'failures', 1}, {'=', 'last_attempt', now}})
    end
end

-- A success: the address's consecutive failures start again, and the attempt counted
-- against the login's window is taken back.
function M.succeeded(login, client)
    box.space.login_locks:delete({login, client})
    local rate = box.space.login_rates:get(login)
    if rate ~= nil and rate.failures > 0 then
        box.space.login_rates:update(login, {{'-', 'failures', 1}})
    end
end

-- Drops counters idle for `idle_seconds` (locks only once they are over), in small
-- transactions.
function M.purge_idle(now, idle_seconds)
    local purged = 0
    for _, spec in ipairs({
        {space = 'login_locks', index = 'updated_at', key = function(t) return {t.login, t.client} end,
         stale = function(t) return t.locked_until <= now end},
        {space = 'login_rates', index = 'last_attempt', key = function(t) return {t.login} end,
         stale = function() return true end},
    }) do
        local space = box.space[spec.space]
        while true do
            local batch = space.index[spec.index]:select({now - idle_seconds}, {iterator = 'LT', limit = 1000})
            local stale = {}
            for _, tuple in ipairs(batch) do
                if spec.stale(tuple) then
                    table.insert(stale, spec.key(tuple))
                end
            end
            if #stale == 0 then
                break
            end
            box.atomic(function()
                for _, key in ipairs(stale) do
                    space:delete(key)
                end
            end)
            purged = purged + #stale
        end
    end
    return purged
end

return M
