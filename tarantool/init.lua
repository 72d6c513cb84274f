-- Tarantool instance for tkv: configuration from the environment, schema migrations,
-- per-service users and the stored functions the services call.
--
-- Run it as `tarantool tarantool/init.lua`. Every setting has a local default:
--   TKV_TARANTOOL_LISTEN            listen address               127.0.0.1:3301
--   TKV_DATA_DIR                    state root                   ./var
--   TKV_TARANTOOL_WORK_DIR          snapshots and WAL            $TKV_DATA_DIR/tarantool
--   TKV_SECRETS_DIR                 service passwords            $TKV_DATA_DIR/secrets
--   TKV_TARANTOOL_<USER>_PASSWORD   password of tkv_auth/tkv_kv (else read from
--                                   $TKV_SECRETS_DIR/tarantool-<user>.password)
--   TKV_TARANTOOL_MAX_TUPLE_BYTES   largest tuple (one kv pair)  8 MiB
--   TKV_TARANTOOL_MEMORY_BYTES      memtx arena                  256 MiB
--   TKV_PURGE_INTERVAL_SECONDS      how often expired state is purged           60
--   TKV_CHANGES_MAX_AGE_SECONDS     change log (Watch) kept this long            3600
--   TKV_CHANGES_MAX_COUNT           ...and at most this many changes             100000
--   TKV_TARANTOOL_CONSOLE_SOCKET    admin console unix socket (off when unset); connect
--                                   with `tarantoolctl connect <path>` or `nc -U <path>`
--   TKV_TARANTOOL_REPLICATION       peers to replicate from, host:port[,host:port]  (none)
--   TKV_TARANTOOL_READ_ONLY         true on a replica                              false
--   TKV_TARANTOOL_SYNC_QUORUM       synchronous replication quorum, 0 = async      0
--   TKV_TARANTOOL_SERVE_REPLICAS    true: replicas may connect (tkv_replicator)     false
--   (replication, failover: docs/operations.md)

local fio = require('fio')
local log = require('log')

local here = fio.dirname(fio.abspath(debug.getinfo(1, 'S').source:sub(2)))
package.path = here .. '/?.lua;' .. package.path

local config = require('tkv.config')
local settings = config.from_env()

-- Passwords are read before box.cfg so a missing secret fails start-up before any file
-- is written.
local schema = require('tkv.schema')
local passwords = {}
for _, user in ipairs(schema.SERVICE_USERS) do
    passwords[user] = config.service_password(settings, user)
end
-- The replication user's password, only where replication is configured: this instance
-- serves replicas, or replicates from peers (which it then authenticates to).
local replicating = settings.serve_replicas or #settings.replication > 0
local replication_password = replicating and config.service_password(settings, schema.REPLICATION_USER) or nil

local replication = {}
for _, peer in ipairs(settings.replication) do
    table.insert(replication, string.format('%s:%s@%s', schema.REPLICATION_USER, replication_password, peer))
end

local files = require('tkv.files')
files.restrict_new()
files.secure_work_dir(settings.work_dir)
box.cfg({
    -- No `listen` yet: clients connect only once the schema and functions below exist.
    work_dir = settings.work_dir,
    -- Every acknowledged write is in the WAL before the call returns. 'none' would trade
    -- durability for speed and is never used here.
    wal_mode = 'write',
    memtx_memory = settings.memory_bytes,
    -- The default 1 MiB caps a single value well below the 4 MiB request limit.
    memtx_max_tuple_size = settings.max_tuple_bytes,
    log_format = 'plain',
    replication = replication,
    read_only = settings.read_only,
    replication_synchro_quorum = math.max(settings.synchro_quorum, 1),
    replication_synchro_timeout = settings.synchro_timeout,
})

if not box.info.ro then
    -- A replica gets the schema, users and passwords from its master.
    schema.migrate()
    for user, password in pairs(passwords) do
        -- Set on every start so a rotated secret takes effect with a restart.
        box.schema.user.passwd(user, password)
    end
    schema.set_replication_user(replication_password)
    schema.set_sync(settings.synchro_quorum > 1)
end

-- The stored functions are resolved by IPROTO as globals: `tkv.kv_read` -> _G.tkv.kv_read.
rawset(_G, 'tkv', require('tkv.api'))
require('tkv.housekeeping').start(settings)
-- Forgets the open watches of a kv_svc connection that goes away (tkv/watch.lua).
require('tkv.watch').start()
if settings.console_socket ~= nil then
    -- A unix socket only: file permissions, not a password, guard the admin console.
    require('console').listen(settings.console_socket)
    files.secure_socket(settings.console_socket)
end
box.cfg({listen = settings.listen})

log.info('tkv: Tarantool ready on %s, data in %s', settings.listen, settings.work_dir)
