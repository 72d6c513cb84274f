-- Versioned schema migrations. Each step runs once per database (box.once) and never
-- changes after release: a new change is a new step.
local M = {}

-- One Tarantool user per service. Each may only execute its own stored functions; the
-- functions run with their definer's rights (setuid), so neither user is granted any
-- space directly and tkv_kv cannot read password hashes.
M.SERVICE_USERS = {'tkv_auth', 'tkv_kv'}

M.FUNCTIONS = {
    tkv_auth = {'tkv.auth_register', 'tkv.auth_credentials', 'tkv.auth_logout'},
    tkv_kv = {'tkv.kv_read', 'tkv.kv_write'},
}

local function v1()
    local users = box.schema.space.create('users', {
        if_not_exists = true,
        format = {
            {name = 'login', type = 'string'},
            {name = 'password_hash', type = 'string'},
            {name = 'name', type = 'string'},
            {name = 'surname', type = 'string'},
            {name = 'created_at', type = 'unsigned'},
        },
    })
    -- unicode_ci makes `Alice` and `alice` the same key: uniqueness and lookup are both
    -- case-insensitive while the tuple keeps the login as typed.
    users:create_index('login', {
        if_not_exists = true,
        parts = {{field = 'login', type = 'string', collation = 'unicode_ci'}},
    })

    local revoked = box.schema.space.create('revoked_tokens', {
        if_not_exists = true,
        format = {
            {name = 'jti', type = 'string'},
            {name = 'expires_at', type = 'unsigned'},
        },
    })
    revoked:create_index('jti', {if_not_exists = true, parts = {{field = 'jti', type = 'string'}}})
    -- Lets the purge fiber find expired revocations without a full scan.
    revoked:create_index('expires_at', {
        if_not_exists = true,
        unique = false,
        parts = {{field = 'expires_at', type = 'unsigned'}},
    })

    local kv = box.schema.space.create('kv', {
        if_not_exists = true,
        format = {
            {name = 'key', type = 'string'},
            -- Any JSON value as native MessagePack, readable by any Tarantool client.
            {name = 'value', type = 'any', is_nullable = true},
        },
    })
    kv:create_index('key', {if_not_exists = true, parts = {{field = 'key', type = 'string'}}})

    for user, functions in pairs(M.FUNCTIONS) do
        -- A placeholder password; init.lua sets the real one on every start.
        box.schema.user.create(user, {if_not_exists = true, password = require('digest').urandom(32):hex()})
        for _, name in ipairs(functions) do
            box.schema.func.create(name, {if_not_exists = true, setuid = true})
            box.schema.user.grant(user, 'execute', 'function', name, {if_not_exists = true})
        end
    end
end

function M.migrate()
    box.once('tkv:schema:v1', v1)
end

return M
