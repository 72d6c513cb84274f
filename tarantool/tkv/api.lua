-- Stored functions called by the services: one call, one round trip, and (for writes)
-- one transaction per request, whatever the batch size.
--
-- The one entry point: every function the services call is exported here, and who may
-- call it follows from its name (tkv/rights.lua). Outcomes the caller must handle are
-- returned as a status string first ('ok', 'exists', 'locked', the token problems
-- 'revoked', 'no_user' and 'superseded', and those of tkv/kv.lua, tkv/access.lua,
-- tkv/sharing.lua and tkv/watch_access.lua: 'missing', 'denied', 'not_owner', 'mismatch',
-- 'quota', 'full', 'too_large' and more), so the services translate them through one
-- table each instead of parsing error messages. Errors (box.error) mean something unexpected.
local fiber = require('fiber')
local kv = require('tkv.kv')
local logins = require('tkv.logins')
local revocations = require('tkv.revocations')
local sharing = require('tkv.sharing')
local uuid = require('uuid')
local watch = require('tkv.watch')
local watch_access = require('tkv.watch_access')

local M = {}

-- Both services -------------------------------------------------------------------------

-- Whether this instance takes writes: services given several addresses (a replica set)
-- send every call to the one that does, and move when that changes (tkv_common/tarantool.py).
function M.node_status()
    return 'ok', box.info.ro, box.info.uuid
end

-- What the services' /metrics report about the store (tkv_common/storage_stats.py):
-- figures, never data, so neither service needs read rights on a space for them. Memory
-- is measured as tkv/store.lua's high-water mark measures it (arena_used of quota_size), so an
-- alert at 80 % means 80 % of the way to "storage is full" at a high water of 100 %.
-- Cheap: len() of a memtx space is O(1).
function M.storage_stats()
    local slab = box.slab.info()
    return 'ok', {
        memory_used_bytes = slab.arena_used,
        memory_limit_bytes = slab.quota_size,
        pairs = box.space.pairs:len(),
        users = box.space.users:len(),
        revision = watch.committed_revision(),
        oldest_revision = watch.oldest_revision(),
        change_log_rows = box.space.changes:len(),
        read_only = box.info.ro,
    }
end

-- auth_svc ------------------------------------------------------------------------------

-- Creates an account with a new account id and token epoch 0 (schema v7); 'exists' when
-- the login is taken in any letter case.
function M.auth_register(login, password_hash, name, surname)
    local users = box.space.users
    if users:get(login) ~= nil then
        return 'exists'
    end
    users:insert({login, password_hash, name, surname, math.floor(fiber.time()), uuid.str(), 0})
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
    return 'ok', user.login, user.password_hash, user.account_id, user.token_epoch
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

-- Why the caller's token cannot be used any more, or nil: revoked (logged out), its
-- account no longer exists (deleted, perhaps registered again under the same login: a new
-- account id), or the account's tokens were all revoked since it was issued (password
-- changed, logged out everywhere: a newer token epoch). Every authenticated function asks
-- this first, in the same call, with the token's jti, sub, account_id and token_epoch.
-- Returns the problem, or nil and the token's user.
local function token_problem(jti, subject, account_id, epoch)
    if revocations.is_revoked(jti) then
        return 'revoked'
    end
    local user = box.space.users:get(subject)
    if user == nil or user.account_id ~= account_id then
        return 'no_user'
    end
    if user.token_epoch ~= epoch then
        return 'superseded'
    end
    return nil, user
end

-- A stored function of the caller's token (jti, subject, account_id, token_epoch), then
-- its own arguments: `fn(user, ...)` runs only for a token that may still be used.
local function authenticated(fn)
    return function(jti, subject, account_id, epoch, ...)
        local problem, user = token_problem(jti, subject, account_id, epoch)
        if problem ~= nil then
            return problem
        end
        return fn(user, ...)
    end
end

-- Revokes the presented token; 'revoked' when it already was (then it is not valid).
function M.auth_logout(jti, subject, account_id, epoch, expires_at)
    local problem = token_problem(jti, subject, account_id, epoch)
    if problem ~= nil then
        return problem
    end
    revocations.revoke(jti, expires_at)
    watch.access_changed()  -- the token's open watches end (tkv/watch.lua)
    return 'ok'
end

-- First step of a password-confirmed change by `client` (ChangePassword, DeleteAccount):
-- like auth_login_check, the attempt is counted as a failure before the password is
-- verified, under the same per-address lock as logins, so a stolen token cannot be used to
-- guess the password faster than Login allows. 'ok' with the account's hash.
M.auth_password_check = authenticated(function(user, client, now, limits)
    local wait = logins.wait(user.login, client, now, limits)
    if wait ~= nil then
        return 'locked', wait
    end
    logins.count_failure(user.login, client, now, limits)
    return 'ok', user.password_hash
end)

-- Sets the new hash and advances the token epoch: every token issued before is refused
-- from now on, the presented one included. Takes back the failure counted by the check.
M.auth_change_password = authenticated(function(user, client, password_hash)
    logins.succeeded(user.login, client)
    box.space.users:update(user.login, {{'=', 'password_hash', password_hash}, {'+', 'token_epoch', 1}})
    watch.access_changed()
    return 'ok'
end)

-- Advances the token epoch: every token of the account is refused from now on.
M.auth_logout_all = authenticated(function(user)
    box.space.users:update(user.login, {{'+', 'token_epoch', 1}})
    watch.access_changed()
    return 'ok'
end)

-- Deletes the account, its namespace and grants (tkv/kv.lua delete_account), in one
-- transaction; 'ok' with the number of pairs deleted.
M.auth_delete_account = authenticated(function(user, client)
    logins.succeeded(user.login, client)
    local deleted
    box.atomic(function()
        deleted = kv.delete_account(user.login)
        box.space.users:delete(user.login)
    end)
    watch.access_changed()
    return 'ok', deleted
end)

-- kv_svc --------------------------------------------------------------------------------
-- Each takes the caller's token first (see authenticated): the revocation check happens in
-- the same call as the data access, so it costs no extra round trip and a Logout that
-- returned before the call started is always seen. The rest is tkv/kv.lua's (pairs),
-- tkv/sharing.lua's and tkv/watch_access.lua's, called with the login as registered as the caller.
local function as_caller(fn)
    return authenticated(function(user, ...)
        return fn(user.login, ...)
    end)
end

-- v1 (the shared store): kv_read(keys, max_response_bytes[, values_only]), kv_write(pairs, limits).
M.kv_read = as_caller(kv.v1_read)
M.kv_write = as_caller(kv.v1_write)
-- v2: namespaces, versions, conditions, expiry, pages.
M.kv_get = as_caller(kv.get)
M.kv_put = as_caller(kv.put)
M.kv_delete = as_caller(kv.delete)
M.kv_list = as_caller(kv.list)
-- Sharing.
M.kv_create_grant = as_caller(sharing.create_grant)
M.kv_list_grants = as_caller(sharing.list_grants)
M.kv_received_grants = as_caller(sharing.received_grants)
M.kv_delete_grant = as_caller(sharing.delete_grant)
-- Watch: a watcher opens and closes with its token; kv_svc's one follower per process
-- reads the change log and re-checks open watches with the service's own rights.
M.kv_watch_open = as_caller(watch_access.watch_open)

function M.kv_watch_close(ids)
    for _, id in ipairs(ids) do
        watch.unregister(id)
    end
    return 'ok'
end

-- See tkv/watch.lua changes(): 'ok', rows, committed revision, access epoch.
M.kv_changes = watch.changes

function M.kv_watch_position()
    return 'ok', watch.position()
end

function M.kv_watch_check(open)
    return 'ok', watch_access.watch_check(open, token_problem)
end

return M
