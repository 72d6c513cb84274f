-- Sharing by grant (docs/api.md, "Sharing"): the grants an owner gives on their namespace,
-- one per (namespace, grantee, prefix). What a grant lets its holder do is checked by
-- tkv/access.lua; these functions only give, list and take them back. Called by
-- tkv/api.lua once the caller's token has been checked, with the login as registered.
local access = require('tkv.access')
local fiber = require('fiber')
local watch = require('tkv.watch')

local M = {}

local ROLES = {READER = true, WRITER = true}

-- Grants are the owner's alone to give: their own namespace, nobody else's, not `shared`.
local function own_namespace(caller, ns_name)
    local ns = access.namespace_of(caller, ns_name)
    return ns == caller:lower() and ns or nil
end

-- Gives `grantee` `role` on the keys of the caller's namespace that start with `prefix`
-- ('' = all of them), replacing the role of an existing grant on the same prefix.
-- 'denied' for a namespace not the caller's, 'no_grantee' for an unknown login,
-- 'self_grant' for the caller themselves; otherwise 'ok' and the grant.
function M.create_grant(caller, ns_name, grantee, role, prefix)
    local ns = own_namespace(caller, ns_name)
    if ns == nil then
        return 'denied', ns_name
    end
    if not ROLES[role] then
        box.error(box.error.PROC_LUA, 'unknown role ' .. tostring(role))
    end
    local user = box.space.users:get(grantee)
    if user == nil then
        return 'no_grantee', grantee
    end
    if user.login:lower() == ns then
        return 'self_grant'
    end
    local grant = box.space.grants:replace({ns, user.login, prefix, role, fiber.time()})
    -- A WRITER made a READER keeps reading: no open watch depends on the difference.
    return 'ok', grant
end

-- The grants given on the caller's namespace, by grantee and prefix.
function M.list_grants(caller, ns_name)
    local ns = own_namespace(caller, ns_name)
    if ns == nil then
        return 'denied', ns_name
    end
    return 'ok', box.space.grants:select({ns})
end

-- The grants the caller holds, in every namespace.
function M.received_grants(caller)
    return 'ok', box.space.grants.index.grantee:select({caller})
end

-- Revokes a grant: 'no_grant' when there is none. The grantee's next call is refused,
-- and their open watches that needed it end (tkv/watch.lua signals kv_svc).
function M.delete_grant(caller, ns_name, grantee, prefix)
    local ns = own_namespace(caller, ns_name)
    if ns == nil then
        return 'denied', ns_name
    end
    local gone = box.space.grants:delete({ns, grantee, prefix})
    if gone == nil then
        return 'no_grant', grantee, prefix
    end
    watch.access_changed()
    return 'ok'
end

-- The grants given on namespace `ns` and held by `login` (an account being deleted),
-- inside the caller's transaction.
function M.forget(ns, login)
    for _, grant in ipairs(box.space.grants:select({ns})) do
        box.space.grants:delete({grant[1], grant[2], grant[3]})
    end
    for _, grant in ipairs(box.space.grants.index.grantee:select({login})) do
        box.space.grants:delete({grant[1], grant[2], grant[3]})
    end
end

return M
