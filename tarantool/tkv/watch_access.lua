-- Watch access (docs/api.md, "Watch"): opening a watch, which needs the access a List of
-- its target needs, and re-checking open watches when access may have changed. The change
-- log and the count of open watches are tkv/watch.lua's.
local access = require('tkv.access')
local watch = require('tkv.watch')

local M = {}

-- Opens a watch of `caller` on the keys under `prefix` (or the one key `key`, when not
-- nil) in namespace `ns_name`, after revision `start` (0 = from now): access as for List,
-- then 'compacted' and the oldest revision held when the changes after `start` are gone,
-- 'too_many' and the limit when the caller has `max_watches` open. Otherwise 'ok', the
-- watch id (for watch_close), the stored namespace, the revision it starts after, and
-- the access epoch (tkv/watch.lua).
function M.watch_open(caller, ns_name, prefix, key, start, max_watches)
    -- A nil from MessagePack is box.NULL, which `or` takes for a value; `==` does not.
    local target = prefix
    if key ~= nil then
        target = key
    end
    local ns, refused = access.check(caller, ns_name, {target}, false)
    if ns == nil then
        return unpack(refused)
    end
    if start > 0 and watch.compacted(start) then
        return 'compacted', start, watch.oldest_revision()
    end
    local id = watch.register(caller, max_watches)
    if id == nil then
        return 'too_many', max_watches
    end
    local committed, epoch = watch.position()
    return 'ok', id, ns, start > 0 and start or committed, epoch
end

-- Which open watches may no longer go on, for a kv_svc process told that access changed:
-- `open` holds {id, jti, subject, account_id, token_epoch, namespace, prefix or key} per
-- watch; the answer {id, problem} for each that must end: a token problem ('revoked',
-- 'no_user', 'superseded') or 'denied' (a grant it relied on is gone).
function M.watch_check(open, token_problem)
    local ended = {}
    for _, w in ipairs(open) do
        local problem, user = token_problem(w[2], w[3], w[4], w[5])
        if problem == nil then
            if not access.may_read(user.login, w[6], w[7]) then
                problem = 'denied'
            end
        end
        if problem ~= nil then
            table.insert(ended, {w[1], problem})
        end
    end
    return ended
end

return M
