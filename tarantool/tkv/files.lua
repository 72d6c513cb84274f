-- Tarantool's files are owner-only: the work dir (snapshots, WAL: every hash and pair) and
-- the admin console socket (full control of the instance). Checked on every start, so a
-- data dir made by an older version, or by hand, is brought in line, and one that belongs
-- to another user is refused rather than used.
local ffi = require('ffi')
local fio = require('fio')
local log = require('log')

ffi.cdef('unsigned int getuid(void);')

local M = {}

local OWNER_ONLY_DIR = tonumber('700', 8)
local OWNER_ONLY_FILE = tonumber('600', 8)

-- Files and directories created from now on by this process: no group or other bits.
function M.restrict_new()
    fio.umask(tonumber('077', 8))
end

local function owner_only(path, mode)
    local stat = fio.stat(path)
    if stat == nil then
        return
    end
    if stat.uid ~= ffi.C.getuid() then
        error(string.format('%s belongs to uid %d, not to this user (uid %d): refusing to use it',
            path, stat.uid, ffi.C.getuid()), 0)
    end
    if bit.band(stat.mode, tonumber('777', 8)) ~= mode then
        log.warn('tkv: %s was mode %o; made owner-only (%o)', path, bit.band(stat.mode, tonumber('777', 8)), mode)
        fio.chmod(path, mode)
    end
end

-- The work dir and what is in it (snapshots, WAL, vinyl files if any), before box.cfg.
function M.secure_work_dir(work_dir)
    fio.mktree(work_dir, OWNER_ONLY_DIR)
    owner_only(work_dir, OWNER_ONLY_DIR)
    for _, path in ipairs(fio.glob(fio.pathjoin(work_dir, '*'))) do
        owner_only(path, fio.path.is_dir(path) and OWNER_ONLY_DIR or OWNER_ONLY_FILE)
    end
end

-- The console socket once it listens: read-write for the owner only.
function M.secure_socket(path)
    owner_only(path, OWNER_ONLY_FILE)
end

return M
