-- Revoked token ids (JWT `jti`), kept until the token would have expired anyway.
local fiber = require('fiber')
local log = require('log')

local M = {}

function M.is_revoked(jti)
    return box.space.revoked_tokens:get(jti) ~= nil
end

-- Returns false when the token was already revoked.
function M.revoke(jti, expires_at)
    if M.is_revoked(jti) then
        return false
    end
    box.space.revoked_tokens:insert({jti, expires_at})
    return true
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

function M.start_purge(interval)
    fiber.create(function()
        fiber.name('tkv-revocation-purge')
        while true do
            fiber.sleep(interval)
            -- Only a writable instance purges; a replica receives the deletes.
            if not box.info.ro then
                local ok, result = pcall(M.purge_expired, math.floor(fiber.time()))
                if not ok then
                    log.error('tkv: purging expired revocations failed: %s', result)
                elseif result > 0 then
                    log.info('tkv: purged %d expired revocations', result)
                end
            end
        end
    end)
end

return M
