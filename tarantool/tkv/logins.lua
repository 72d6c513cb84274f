-- Brute-force throttling of logins: consecutive failures per login name, and a lock that
-- grows with every failure past the threshold. State lives here, so it survives restarts
-- and is shared by every auth_svc process.
local M = {}

-- 'locked' and the seconds left, or nothing.
function M.lock_remaining(login, now)
    local attempt = box.space.login_attempts:get(login)
    if attempt ~= nil and attempt.locked_until > now then
        return attempt.locked_until - now
    end
    return nil
end

function M.failures(login)
    local attempt = box.space.login_attempts:get(login)
    return attempt and attempt.failures or 0
end

-- Counts a failure; past `max_failures` the name is locked for
-- lock_seconds * 2^(failures - max_failures), at most max_lock_seconds. Returns the lock.
function M.record_failure(login, now, max_failures, lock_seconds, max_lock_seconds)
    local space = box.space.login_attempts
    local attempt = space:get(login)
    local failures = (attempt and attempt.failures or 0) + 1
    local lock = 0
    if failures >= max_failures then
        lock = math.min(lock_seconds * 2 ^ (failures - max_failures), max_lock_seconds)
    end
    space:replace({attempt and attempt.login or login, failures, now + lock, now})
    return lock
end

function M.reset(login)
    box.space.login_attempts:delete(login)
end

-- Drops counters idle for `idle_seconds` whose lock is over, in small transactions.
function M.purge_idle(now, idle_seconds)
    local index = box.space.login_attempts.index.updated_at
    local purged = 0
    while true do
        local batch = index:select({now - idle_seconds}, {iterator = 'LT', limit = 1000})
        local stale = {}
        for _, attempt in ipairs(batch) do
            if attempt.locked_until <= now then
                table.insert(stale, attempt.login)
            end
        end
        if #stale == 0 then
            return purged
        end
        box.atomic(function()
            for _, login in ipairs(stale) do
                box.space.login_attempts:delete(login)
            end
        end)
        purged = purged + #stale
    end
end

return M
