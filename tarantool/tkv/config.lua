-- Instance settings read once from the environment, with local defaults (tkv/defaults.lua).
local fio = require('fio')
local defaults = require('tkv.defaults')

local M = {}

-- The value of a variable, else its default from tkv/defaults.lua (generated from
-- tkv_common/catalogue.py, where every default is kept). A default may name another
-- setting, as $TKV_DATA_DIR; a variable missing there is a mistake, stopped at start-up.
local function env(name)
    local setting = defaults[name]
    if setting == nil then
        error(string.format('%s is not in tkv/defaults.lua (add it to tkv_common/catalogue.py)', name), 0)
    end
    local value = os.getenv(name)
    if value ~= nil and value ~= '' then
        return value
    end
    if type(setting.default) == 'string' then
        return (setting.default:gsub('%$(TKV_[%w_]+)', env))
    end
    return setting.default
end

local function env_number(name)
    local raw = env(name)
    local value = tonumber(raw)
    local minimum = defaults[name].minimum
    if value == nil or value < 0 or (value == 0 and minimum ~= 0) then
        error(string.format('%s must be a positive number, got %q', name, raw), 0)
    end
    return value
end

function M.from_env()
    return {
        listen = env('TKV_TARANTOOL_LISTEN'),
        work_dir = fio.abspath(env('TKV_TARANTOOL_WORK_DIR')),
        secrets_dir = fio.abspath(env('TKV_SECRETS_DIR')),
        max_tuple_bytes = env_number('TKV_TARANTOOL_MAX_TUPLE_BYTES'),
        memory_bytes = env_number('TKV_TARANTOOL_MEMORY_BYTES'),
        purge_seconds = env_number('TKV_PURGE_INTERVAL_SECONDS'),
        -- The change log Watch reads (docs/api.md, "Watch"): kept this long, at most this many.
        changes_max_age = env_number('TKV_CHANGES_MAX_AGE_SECONDS'),
        changes_max_count = env_number('TKV_CHANGES_MAX_COUNT'),
        console_socket = env('TKV_TARANTOOL_CONSOLE_SOCKET'),
        -- Replication (docs/operations.md): the peers to replicate from, host:port,
        -- comma-separated; a replica also sets read_only.
        replication = M.split(env('TKV_TARANTOOL_REPLICATION')),
        read_only = env('TKV_TARANTOOL_READ_ONLY') == 'true',
        -- Whether replicas may connect to this instance (as tkv_replicator). The user
        -- exists only then, or when this instance replicates from peers itself.
        serve_replicas = env('TKV_TARANTOOL_SERVE_REPLICAS') == 'true',
        -- Synchronous replication (experimental on 2.6): a write is acknowledged only once
        -- this many instances (the master included) have it in their WAL. 0 = asynchronous.
        synchro_quorum = env_number('TKV_TARANTOOL_SYNC_QUORUM'),
        synchro_timeout = env_number('TKV_TARANTOOL_SYNC_TIMEOUT_SECONDS'),
        -- Under the failover agent (docs/high-availability.md): read-only until the agent
        -- promotes it, clients let in only once the agent has checked its history.
        ha = env('TKV_HA') == 'true',
        -- With TKV_HA: this node creates the replica set if its work dir is empty (one node
        -- of the set, on its first start only; the others join it).
        ha_bootstrap = env('TKV_HA_BOOTSTRAP') == 'true',
    }
end

function M.split(list)
    local items = {}
    for item in list:gmatch('[^,%s]+') do
        table.insert(items, item)
    end
    return items
end

-- The password of a service user: TKV_TARANTOOL_<USER>_PASSWORD, else the secret file
-- that `python -m tkv_common.devsecrets` (or the operator) wrote.
function M.service_password(settings, user)
    local from_env = env('TKV_TARANTOOL_' .. user:upper() .. '_PASSWORD')
    if from_env ~= nil then
        return from_env
    end
    local path = fio.pathjoin(settings.secrets_dir, 'tarantool-' .. user .. '.password')
    local file = fio.open(path, {'O_RDONLY'})
    if file == nil then
        error(string.format(
            'no password for Tarantool user %s: set TKV_TARANTOOL_%s_PASSWORD or create %s '
            .. '(python -m tkv_common.devsecrets does it for development)',
            user, user:upper(), path), 0)
    end
    local password = file:read():gsub('%s+$', '')
    file:close()
    if password == '' then
        error(string.format('password file %s is empty', path), 0)
    end
    return password
end

return M
