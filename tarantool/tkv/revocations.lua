-- Revoked token ids (JWT `jti`), kept until the token would have expired anyway.
local M = {}

function M.is_revoked(jti)
    return box.space.revoked_tokens:get(jti) ~= nil
end

function M.revoke(jti, expires_at)
    box.space.revoked_tokens:replace({jti, expires_at})
end

-- Deletes revocations of tokens that have expired: they are rejected by their `exp`
-- alone. Small batches keep each transaction short.
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
