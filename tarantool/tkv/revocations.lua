-- Revoked token ids (JWT `jti`), kept until no service can accept the token any more: the
-- `expires_at` stored is the token's exp plus the largest verification leeway (auth_svc
-- computes it), since a token is accepted until exp + leeway.
local M = {}

function M.is_revoked(jti)
    return box.space.revoked_tokens:get(jti) ~= nil
end

function M.revoke(jti, expires_at)
    box.space.revoked_tokens:replace({jti, expires_at})
end

-- Deletes revocations whose tokens every service now rejects by their `exp` alone
-- (`expires_at` < now). Small batches keep each transaction short.
function M.purge_expired(now)
    local index = box.space.revoked_tokens.index.expires_at
    local purged = 0
    while true do
        local batch = index:select({now}, {iterator = 'LT', limit = 1000})
        if #batch == 0 then
            return purged
        end
        box.atomic(function()
            for _, tuple in ipairs(batch) do
                box.space.revoked_tokens:delete({tuple.jti})
            end
        end)
        purged = purged + #batch
    end
end

return M
