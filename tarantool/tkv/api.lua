-- Stored functions called by the services: one call, one round trip, and (for writes)
-- one transaction per request, whatever the batch size.
--
-- Outcomes the caller must handle are returned as a status string first ('ok',
-- 'exists', 'revoked', 'missing'), so the services translate them through one table
-- instead of parsing error messages. Errors (box.error) mean something unexpected.
local fiber = require('fiber')
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

-- The login as registered and its password hash, or nothing for an unknown login.
function M.auth_credentials(login)
    local user = box.space.users:get(login)
    if user == nil then
        return nil
    end
    return user.login, user.password_hash
end

-- Revokes one token; 'revoked' when it already was (the caller's token is not valid).
function M.auth_logout(jti, expires_at)
    if not revocations.revoke(jti, expires_at) then
        return 'revoked'
    end
    return 'ok'
end

-- kv_svc --------------------------------------------------------------------------------
-- Both take the caller's token id first: the revocation check happens in the same call
-- as the data access, so it costs no extra round trip and a Logout that returned before
-- the call started is always seen.

-- Values of all keys in request order, or 'missing' with every absent key.
function M.kv_read(jti, keys)
    if revocations.is_revoked(jti) then
        return 'revoked'
    end
    local kv = box.space.kv
    local values, missing = {}, {}
    for i, key in ipairs(keys) do
        local tuple = kv:get(key)
        if tuple == nil then
            table.insert(missing, key)
        else
            -- box.NULL (a JSON null) keeps its slot; plain nil would leave a hole.
            values[i] = tuple[2] == nil and box.NULL or tuple[2]
        end
    end
    if #missing > 0 then
        return 'missing', missing
    end
    return 'ok', values
end

-- Inserts every {key, value} whose key is absent, all in one transaction; returns the
-- keys that already existed, in request order. Memtx runs the loop without yielding, so
-- of two concurrent writers of one new key exactly one inserts it.
function M.kv_write(jti, pairs)
    if revocations.is_revoked(jti) then
        return 'revoked'
    end
    local kv = box.space.kv
    local skipped = {}
    box.atomic(function()
        for _, pair in ipairs(pairs) do
            local key = pair[1]
            if kv:get(key) ~= nil then
                table.insert(skipped, key)
            else
                kv:insert({key, pair[2]})
            end
        end
    end)
    return 'ok', skipped
end

return M
