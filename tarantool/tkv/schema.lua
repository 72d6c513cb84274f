-- Versioned schema migrations. Each step runs once per database (box.once) and never
-- changes after release: a new change is a new step.
local M = {}

-- One Tarantool user per service. Each may only execute its own stored functions, which
-- tkv/rights.lua grants at every start from what tkv/api.lua exports: no step here grants one.
M.SERVICE_USERS = {'tkv_auth', 'tkv_kv'}
-- Replicas connect as this user (role 'replication': read the WAL, nothing else).
M.REPLICATION_USER = 'tkv_replicator'
-- Every space holding state, for synchronous replication (M.set_sync).
M.DATA_SPACES = {'users', 'revoked_tokens', 'login_locks', 'login_rates', 'pairs', 'counters', 'usage',
                 'changes', 'grants'}

-- Steps v1, v2, v6 and v7 also created and granted the stored functions of their time, and
-- v8-v10 did nothing else; tkv/rights.lua does that at every start now, from tkv/api.lua's
-- exports. A data dir upgraded by those steps and a new one end with the same rights, so
-- that part of released steps could go: the steps left change spaces, users and data.
-- v8-v10 are gone; data dirs that ran them keep their box.once marks, so the next step after
-- v7 was v11.

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
            -- Any JSON value. kv_write stores the encoded google.protobuf.Value as
            -- MP_BIN (tkv/blobs.lua); native MessagePack from earlier versions is read too.
            {name = 'value', type = 'any', is_nullable = true},
        },
    })
    kv:create_index('key', {if_not_exists = true, parts = {{field = 'key', type = 'string'}}})

    for _, user in ipairs(M.SERVICE_USERS) do
        -- A placeholder password; init.lua sets the real one on every start.
        box.schema.user.create(user, {if_not_exists = true, password = require('digest').urandom(32):hex()})
    end
end

-- Failed logins per login name, for brute-force throttling (tkv/logins.lua). Keyed by the
-- name as typed, case-insensitively, whether or not such a user exists: throttling an
-- unknown name exactly like a real one reveals nothing.
local function v2()
    local attempts = box.schema.space.create('login_attempts', {
        if_not_exists = true,
        format = {
            {name = 'login', type = 'string'},
            {name = 'failures', type = 'unsigned'},
            {name = 'locked_until', type = 'number'},
            {name = 'updated_at', type = 'number'},
        },
    })
    attempts:create_index('login', {
        if_not_exists = true,
        parts = {{field = 'login', type = 'string', collation = 'unicode_ci'}},
    })
    -- Lets the purge fiber drop stale counters without a full scan.
    attempts:create_index('updated_at', {
        if_not_exists = true,
        unique = false,
        parts = {{field = 'updated_at', type = 'number'}},
    })
    -- Replaced by tkv.auth_login_check; dropping a function drops its grants too.
    box.schema.func.drop('tkv.auth_credentials', {if_exists = true})
end

local function v3()
    box.schema.user.create(M.REPLICATION_USER, {if_not_exists = true, password = require('digest').urandom(32):hex()})
    box.schema.user.grant(M.REPLICATION_USER, 'replication', nil, nil, {if_not_exists = true})
end

-- The replication user exists only while replication is configured (the start-up's
-- decision, tarantool/init.lua): a password nobody uses is one more to leak. Called on a
-- writable instance; replicas receive the user, or its absence, from their master.
function M.set_replication_user(password)
    if password == nil then
        box.schema.user.drop(M.REPLICATION_USER, {if_exists = true})
        return
    end
    box.schema.user.create(M.REPLICATION_USER, {if_not_exists = true, password = password})
    box.schema.user.grant(M.REPLICATION_USER, 'replication', nil, nil, {if_not_exists = true})
    box.schema.user.passwd(M.REPLICATION_USER, password)
end

-- Brute-force throttling by (login, client address) instead of by login alone
-- (tkv/logins.lua): anyone could keep a known login locked for ever. `login_locks` holds
-- the consecutive failures of one login from one client address and its lock;
-- `login_rates` the failures of one login from every address in the current window, which
-- slows (one attempt per interval) rather than locks. Both keyed case-insensitively by the
-- name as typed, whether or not such a user exists. The per-login locks of v2 go.
local function v5()
    local locks = box.schema.space.create('login_locks', {
        if_not_exists = true,
        format = {
            {name = 'login', type = 'string'},
            {name = 'client', type = 'string'},
            {name = 'failures', type = 'unsigned'},
            {name = 'locked_until', type = 'number'},
            {name = 'updated_at', type = 'number'},
        },
    })
    locks:create_index('login_client', {
        if_not_exists = true,
        parts = {{field = 'login', type = 'string', collation = 'unicode_ci'}, {field = 'client', type = 'string'}},
    })
    locks:create_index('updated_at', {
        if_not_exists = true,
        unique = false,
        parts = {{field = 'updated_at', type = 'number'}},
    })
    local rates = box.schema.space.create('login_rates', {
        if_not_exists = true,
        format = {
            {name = 'login', type = 'string'},
            {name = 'window_start', type = 'number'},
            {name = 'failures', type = 'unsigned'},
            {name = 'last_attempt', type = 'number'},
        },
    })
    rates:create_index('login', {
        if_not_exists = true,
        parts = {{field = 'login', type = 'string', collation = 'unicode_ci'}},
    })
    rates:create_index('last_attempt', {
        if_not_exists = true,
        unique = false,
        parts = {{field = 'last_attempt', type = 'number'}},
    })
    -- The v2 functions change their arguments; the old per-login counter is replaced.
    box.schema.func.drop('tkv.auth_login_failed', {if_exists = true})
    if box.space.login_attempts ~= nil then
        box.space.login_attempts:drop()
    end
end

-- Unauthenticated connections may do nothing at all: by default guest keeps a session
-- and, through the public role, reads the system views (users, spaces, functions).
-- Every client of ours authenticates; replicas too.
local function v4()
    box.schema.user.revoke('guest', 'session,usage', 'universe', nil, {if_exists = true})
end

-- Key/value API v2 (docs/api.md, "v2"): pairs re-keyed by (namespace, key) with versions,
-- owner, times and size; one revision counter; per-user usage for quotas; the change log
-- Watch reads; grants for sharing. The v1 `kv` space is moved into `pairs` under the
-- shared namespace, owner unknown, by move_v1_pairs below.
local function v6()
    local pairs_space = box.schema.space.create('pairs', {
        if_not_exists = true,
        format = {
            -- '' for the shared store (tkv/kv.lua SHARED), otherwise the owner's login in
            -- lower case.
            {name = 'namespace', type = 'string'},
            {name = 'key', type = 'string'},
            -- The encoded google.protobuf.Value as MP_BIN (tkv/blobs.lua), or native
            -- MessagePack for pairs written before blobs.
            {name = 'value', type = 'any', is_nullable = true},
            {name = 'version', type = 'unsigned'},
            {name = 'create_version', type = 'unsigned'},
            -- The creator's login as registered; '' when unknown.
            {name = 'owner', type = 'string'},
            {name = 'update_time', type = 'number'},
            -- 0 when the pair does not expire.
            {name = 'expire_time', type = 'number'},
            -- Bytes of key + value charged to the owner's quota.
            {name = 'size', type = 'unsigned'},
        },
    })
    -- Byte-wise key order inside a namespace: ListPairs pages walk this index.
    pairs_space:create_index('primary', {
        if_not_exists = true,
        parts = {{field = 'namespace', type = 'string'}, {field = 'key', type = 'string'}},
    })
    -- The expiry sweep finds due pairs without a scan (0 = never sorts first).
    pairs_space:create_index('expire_time', {
        if_not_exists = true,
        unique = false,
        parts = {{field = 'expire_time', type = 'number'}},
    })

    local counters = box.schema.space.create('counters', {
        if_not_exists = true,
        format = {{name = 'name', type = 'string'}, {name = 'value', type = 'unsigned'}},
    })
    counters:create_index('name', {if_not_exists = true, parts = {{field = 'name', type = 'string'}}})

    local usage = box.schema.space.create('usage', {
        if_not_exists = true,
        format = {
            {name = 'login', type = 'string'},
            {name = 'pairs', type = 'integer'},
            {name = 'bytes', type = 'integer'},
        },
    })
    usage:create_index('login', {
        if_not_exists = true,
        parts = {{field = 'login', type = 'string', collation = 'unicode_ci'}},
    })

    -- What each write batch changed, one row per batch in revision order: `events` holds
    -- [type (PUT, DELETE or EXPIRE), namespace, key, value (PUT only, MP_BIN),
    -- create_version, owner, expire_time] per changed pair (tkv/kv.lua). Trimmed by age and
    -- by the number of changes, which `counters` keeps as 'changes' (tkv/housekeeping.lua).
    local changes = box.schema.space.create('changes', {
        if_not_exists = true,
        format = {
            {name = 'revision', type = 'unsigned'},
            {name = 'time', type = 'number'},
            {name = 'count', type = 'unsigned'},
            {name = 'events', type = 'array'},
        },
    })
    changes:create_index('primary', {
        if_not_exists = true,
        parts = {{field = 'revision', type = 'unsigned'}},
    })

    -- Sharing (docs/api.md, "Sharing"): one grant per (namespace, grantee, prefix).
    local grants = box.schema.space.create('grants', {
        if_not_exists = true,
        format = {
            {name = 'namespace', type = 'string'},
            {name = 'grantee', type = 'string'},
            {name = 'prefix', type = 'string'},
            {name = 'role', type = 'string'},  -- READER or WRITER
            {name = 'create_time', type = 'number'},
        },
    })
    grants:create_index('primary', {
        if_not_exists = true,
        parts = {
            {field = 'namespace', type = 'string'},
            {field = 'grantee', type = 'string', collation = 'unicode_ci'},
            {field = 'prefix', type = 'string'},
        },
    })
    grants:create_index('grantee', {
        if_not_exists = true,
        unique = false,
        parts = {{field = 'grantee', type = 'string', collation = 'unicode_ci'}},
    })
end

-- Moves every pair of the v1 `kv` space into `pairs` under the shared namespace, owner
-- unknown, as one write batch (revision 1 on a store that had none), then drops `kv`.
-- Values are copied as the MessagePack they are. Runs on every start while `kv` exists,
-- so a start that died half-way finishes the move (box.once marks v6 done before it runs).
local NULL_VALUE = '\xc4\x02\x08\x00'  -- MP_BIN of google.protobuf.Value{null_value}

local function move_v1_pairs()
    local kv = box.space.kv
    if kv == nil then
        return
    end
    local blobs = require('tkv.blobs')
    local log = require('log')
    local target = box.space.pairs.id
    local row = box.space.counters:get('revision')
    local revision = (row ~= nil and row.value or 0) + 1
    local now = require('fiber').time()
    local moved = 0
    while kv:len() > 0 do
        box.begin()
        for _, tuple in ipairs(kv:select({}, {limit = 1000})) do
            -- A JSON null stored natively ({key} or {key, nil}) becomes an encoded
            -- google.protobuf.Value null, so that a nil value field means "left out".
            local value = tuple[2] == nil and NULL_VALUE or blobs.field_bytes(tuple, 2)
            local size = #tuple[1] + #value
            blobs.replace(target, {'', tuple[1], blobs.encoded(value), revision, revision, '', now, 0, size})
            kv:delete(tuple[1])
            moved = moved + 1
        end
        box.space.counters:replace({'revision', revision})
        box.commit()
    end
    kv:drop()
    log.info('tkv: moved %d pairs of the v1 store to the shared namespace', moved)
end

-- Accounts that tokens name (docs/api.md, "v2 accounts"): an id that is never reused, so that a
-- deleted login registered again is a new account no old token works for, and a token
-- epoch that ChangePassword and LogoutAll advance to refuse every earlier token at once.
-- Existing users get theirs here; tokens issued before carry neither and are refused
-- (they lasted 30 minutes at most: users log in again once).
local function v7()
    local users = box.space.users
    local format = users:format()
    if #format == 5 then
        table.insert(format, {name = 'account_id', type = 'string', is_nullable = true})
        table.insert(format, {name = 'token_epoch', type = 'unsigned', is_nullable = true})
        users:format(format)
    end
    local uuid = require('uuid')
    for _, user in ipairs(users:select()) do
        if user[6] == nil then
            users:update(user[1], {{'=', 6, uuid.str()}, {'=', 7, 0}})
        end
    end
end

-- A replica-local space a demoted leader writes one row to, to learn when its synchronous
-- queue is empty (tkv/ha.lua demote says why). Never replicated (is_local), never read, and
-- no service user may touch it.
local function v11()
    local barrier = box.schema.space.create('ha_barrier', {
        is_local = true, if_not_exists = true, format = {{name = 'id', type = 'unsigned'}},
    })
    barrier:create_index('primary', {if_not_exists = true})
end

function M.migrate()
    box.once('tkv:schema:v1', v1)
    box.once('tkv:schema:v2', v2)
    box.once('tkv:schema:v3', v3)
    box.once('tkv:schema:v4', v4)
    box.once('tkv:schema:v5', v5)
    box.once('tkv:schema:v6', v6)
    move_v1_pairs()
    box.once('tkv:schema:v7', v7)
    box.once('tkv:schema:v11', v11)
end

-- Synchronous or asynchronous replication of every data space, per the configuration.
-- Tarantool 2.6 has no space:alter(); the flag lives in the space's _space tuple.
function M.set_sync(sync)
    for _, name in ipairs(M.DATA_SPACES) do
        local space = box.space[name]
        if space.is_sync ~= sync then
            local flags = box.space._space:get(space.id).flags
            flags.is_sync = sync
            box.space._space:update(space.id, {{'=', 'flags', flags}})
        end
    end
end

return M
