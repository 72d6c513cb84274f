-- Stored functions called by the services: one call, one round trip, and (for writes)
-- one transaction per request, whatever the batch size.
--
-- Outcomes the caller must handle are returned as a status string first ('ok',
-- 'exists', 'locked', 'revoked', 'no_user', 'missing'), so the services translate them through one table
-- instead of parsing error messages. Errors (box.error) mean something unexpected.
local fiber = require('fiber')
local kv = require('tkv.kv')
local logins = require('tkv.logins')
local revocations = require('tkv.revocations')

local M = {}

-- auth_svc ------------------------------------------------------------------------------

-- Creates an account; 'exists' when the login is taken in any letter case.
function M.auth_register(login, password_hash, name, surname)
    local users = box.space.users
    if users:get(login) ~= nil then
        return 'exists'
    end
    users:insert({login, password_hash, name, surname, math.floor(fiber.time())})
    return 'ok'
end

-- First step of a login by `client` (the address auth_svc attributes the call to):
-- 'locked' with the seconds to wait; otherwise the attempt is counted as a failure here,
-- in the same call as the check and before the password is verified, so that however many
-- guesses arrive at once at most `limits.max_failures` per address get past this point
-- (a success takes it back: auth_login_succeeded). Then 'ok' with the login as registered
-- and its hash, or nothing for an unknown login. `limits`: see tkv/logins.lua.
function M.auth_login_check(login, client, now, limits)
    local wait = logins.wait(login, client, now, limits)
    if wait ~= nil then
        return 'locked', wait
    end
    logins.count_failure(login, client, now, limits)
    local user = box.space.users:get(login)
    if user == nil then
        return 'ok'
    end
    return 'ok', user.login, user.password_hash
end

function M.auth_login_succeeded(login, client)
    logins.succeeded(login, client)
    return 'ok'
end

-- Replaces a hash made with outdated parameters after a successful login.
function M.auth_set_password_hash(login, password_hash)
    box.space.users:update(login, {{'=', 'password_hash', password_hash}})
    return 'ok'
end

-- Why the caller's token cannot be used any more, or nil: revoked (logged out), or its
-- user no longer exists. Every authenticated function asks this first, in the same call.
local function token_problem(jti, subject)
    if revocations.is_revoked(jti) then
        return 'revoked'
    end
    if box.space.users:get(subject) == nil then
        return 'no_user'
    end
    return nil
end

-- Revokes one token; 'revoked' when it already was (the caller's token is not valid).
function M.auth_logout(jti, subject, expires_at)
    local problem = token_problem(jti, subject)
    if problem ~= nil then
        return problem
    end
    revocations.revoke(jti, expires_at)
    return 'ok'
end

-- kv_svc --------------------------------------------------------------------------------
-- Each takes the caller's token id and subject first: the revocation check happens in the
-- same call as the data access, so it costs no extra round trip and a Logout that returned
-- before the call started is always seen. The rest is tkv/kv.lua's, called with the
-- subject (the login as registered) as the caller.
local function authenticated(fn)
    return function(jti, subject, ...)
        local problem = token_problem(jti, subject)
        if problem ~= nil then
            return problem
        end
        return fn(subject, ...)
    end
end

-- v1 (the shared store): kv_read(keys, max_response_bytes), kv_write(pairs, limits).
M.kv_read = authenticated(kv.v1_read)
M.kv_write = authenticated(kv.v1_write)
-- v2: namespaces, versions, conditions, expiry, pages.
M.kv_get = authenticated(kv.get)
M.kv_put = authenticated(kv.put)
M.kv_delete = authenticated(kv.delete)
M.kv_list = authenticated(kv.list)

return M
