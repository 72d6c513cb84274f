-- Who may use which namespace (docs/api.md, "Namespaces", "Sharing"): the one access check
-- of every stored function that reads, writes or watches pairs (tkv/kv.lua,
-- tkv/watch_access.lua), looked up in the same call as the data, so that a grant or its
-- revocation counts from the very next call.
local M = {}

-- The namespace of the v1 store, as stored: no login is empty, so no user's namespace
-- (their login in lower case) can ever be it, not even a user called "shared".
M.SHARED = ''

-- The stored namespace a request names: `shared`, `me`, or a login in any letter case
-- (logins are ASCII letters and digits, so lower() is their case folding).
function M.namespace_of(caller, name)
    if name == 'shared' then
        return M.SHARED
    elseif name == 'me' then
        return caller:lower()
    end
    return name:lower()
end

-- How `caller` may use namespace `ns`: true for `shared` and their own (the rules of
-- each apply), the grants they hold on it ({namespace, grantee, prefix, role, time}
-- tuples, docs/api.md, "Sharing"), or nil: no access at all.
local function access_of(caller, ns)
    if ns == M.SHARED or ns == caller:lower() then
        return true
    end
    local held = box.space.grants:select({ns, caller})
    return #held > 0 and held or nil
end

-- Whether one of `held` lets its holder read (or, with `writing`, write) `key`; for a
-- prefix (List, Watch): every key under it.
local function covers(held, key, writing)
    for _, grant in ipairs(held) do
        local prefix = grant[3]
        if (not writing or grant[4] == 'WRITER') and key:sub(1, #prefix) == prefix then
            return true
        end
    end
    return false
end

-- The stored namespace that `ns_name` names, when `caller` may read (`writing`: write)
-- every key of `keys` in it (strings, or request items whose first field is the key).
-- Otherwise nil and the refusal, the answer as a list to unpack: 'denied' for a namespace
-- they may not use at all (the same answer whether or not it exists), 'not_granted' with
-- the keys their grants do not cover. Each caller begins with
--     local ns, refused = access.check(caller, ns_name, keys, writing)
--     if ns == nil then
--         return unpack(refused)
--     end
function M.check(caller, ns_name, keys, writing)
    local ns = M.namespace_of(caller, ns_name)
    local access = access_of(caller, ns)
    if access == true then
        return ns
    elseif access == nil then
        return nil, {'denied', ns_name}
    end
    local outside = {}
    for _, entry in ipairs(keys) do
        local key = type(entry) == 'table' and entry[1] or entry
        if not covers(access, key, writing) then
            table.insert(outside, key)
        end
    end
    if #outside > 0 then
        return nil, {'not_granted', ns_name, writing and 'write' or 'read', outside}
    end
    return ns
end

-- Whether `login` may still read `target` (a key, or every key under a prefix) in stored
-- namespace `ns`: an open watch asks again whenever access may have changed.
function M.may_read(login, ns, target)
    local access = access_of(login, ns)
    return access == true or (access ~= nil and covers(access, target, false))
end

return M
