-- Who may call which stored function, derived at every start from what tkv/api.lua exports,
-- so that a new function needs no migration and a removed one keeps no grant.
--
-- The rule, by the export's name (`tkv.<name>` for IPROTO):
--   auth_<...>   auth_svc's user, tkv_auth, alone
--   kv_<...>     kv_svc's user, tkv_kv, alone
--   any other    the users UNPREFIXED names for it; an export neither prefixed nor named
--                there stops the start, so that no function is granted by guess.
-- Every export is a setuid function (it runs with the admin's rights, so neither service
-- user is given any space: tkv_kv cannot read password hashes), and a service user may
-- execute exactly the exports the rule gives it: any other function grant it holds is
-- revoked, and a `tkv.*` function no longer exported is dropped (with its grants).
local M = {}

local PREFIXES = {
    {prefix = 'auth_', users = {'tkv_auth'}},
    {prefix = 'kv_', users = {'tkv_kv'}},
}

-- Functions both services call, and one of kv_svc's from before this rule, whose name
-- stays (services of the previous release call it by it while an upgrade is under way).
local UNPREFIXED = {
    node_status = {'tkv_auth', 'tkv_kv'},  -- which node takes writes (tkv_common/tarantool.py)
    storage_stats = {'tkv_kv'},  -- kv_svc reports the store's figures for both: one series
}

-- The users that may call export `name`; an error for a name the rule does not cover.
function M.callers(name)
    for _, rule in ipairs(PREFIXES) do
        if name:sub(1, #rule.prefix) == rule.prefix then
            return rule.users
        end
    end
    local users = UNPREFIXED[name]
    if users == nil then
        error(('tkv/api.lua exports %s: name it auth_* or kv_*, or give its callers in tkv/rights.lua'):format(name),
            2)
    end
    return users
end

-- {['tkv.<name>'] = users} for every function `api` exports. Pure, so that init.lua can
-- work it out before box.cfg: a mistake in the rule stops the start before any file is written.
function M.of(api)
    local wanted = {}
    for name, value in pairs(api) do
        if type(value) == 'function' then
            wanted['tkv.' .. name] = M.callers(name)
        end
    end
    return wanted
end

-- Each export a setuid function. Tarantool 2.6 cannot alter a function: one created
-- otherwise (by hand) is made again, and granted again below.
local function define(name)
    local existing = box.space._func.index.name:get(name)
    if existing ~= nil and existing.setuid ~= 1 then
        box.schema.func.drop(name)
        existing = nil
    end
    if existing == nil then
        box.schema.func.create(name, {setuid = true})
    end
end

-- The names of the `tkv.*` functions that exist now.
local function ours()
    local names = {}
    for _, func in box.space._func.index.name:pairs('tkv.', {iterator = 'GE'}) do
        if func.name:sub(1, 4) ~= 'tkv.' then
            break
        end
        table.insert(names, func.name)
    end
    return names
end

-- The functions `user` may execute now, by name; '' for a grant on every function.
local function granted(user)
    local uid = box.space._user.index.name:get(user).id
    local names = {}
    for _, priv in box.space._priv:pairs({uid, 'function'}) do
        local func = type(priv.object_id) == 'number' and box.space._func:get(priv.object_id) or nil
        table.insert(names, func ~= nil and func.name or '')
    end
    return names
end

-- Makes the rights those of `wanted` (from M.of) for the service users `users`, on a
-- writable instance (replicas receive them). Idempotent: a grant or revocation that
-- changes nothing writes nothing.
function M.apply(wanted, users)
    for name in pairs(wanted) do
        define(name)
    end
    for _, name in ipairs(ours()) do
        if wanted[name] == nil then
            box.schema.func.drop(name)
        end
    end
    for _, user in ipairs(users) do
        local may = {}
        for name, callers in pairs(wanted) do
            for _, caller in ipairs(callers) do
                if caller == user then
                    may[name] = true
                    box.schema.user.grant(user, 'execute', 'function', name, {if_not_exists = true})
                end
            end
        end
        for _, name in ipairs(granted(user)) do
            if not may[name] then
                -- '': execute on every function, the entity grant (no name).
                box.schema.user.revoke(user, 'execute', 'function', name ~= '' and name or nil, {if_exists = true})
            end
        end
    end
end

return M
