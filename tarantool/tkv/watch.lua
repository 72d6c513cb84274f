-- What Watch needs from the store (docs/api.md, "Watch"): the change log read in revision
-- order by one long-poll per kv_svc process (never one per watcher), the signal that
-- someone may have lost access to what they watch, and the count of open watches per user.
--
-- Only committed changes are ever handed out. Memtx without MVCC shows a transaction's
-- writes to other fibers while its WAL write is under way, and a write that then fails
-- (or, with a synchronous quorum, times out) is rolled back: an event read in that window
-- would describe a change that never happened. So the log is read only up to
-- `committed`, which advances in on_commit triggers; transactions commit in revision
-- order (no yield between taking a revision and committing), so it never skips one.
local fiber = require('fiber')

local M = {}

local changes_cond = fiber.cond()
local committed = nil  -- the newest committed revision; read from the store on first use
-- Changes whenever a watcher may have lost access (a token revoked, a grant deleted, an
-- account gone). Only ever compared for equality, so the start time makes values from
-- before a restart of Tarantool unlikely to repeat.
local access_epoch = math.floor(fiber.time() * 1000)

local function revision_counter()
    local row = box.space.counters:get('revision')
    return row ~= nil and row.value or 0
end

function M.committed_revision()
    if box.info.ro then
        -- A replica commits what it applies, and runs no on_commit trigger of ours for it:
        -- its counter is committed. Forgotten, so that once promoted it starts from there.
        committed = nil
        return revision_counter()
    end
    if committed == nil then
        committed = revision_counter()
    end
    return committed
end

-- Called inside the transaction that writes change-log row `revision`: on every write,
-- so the trigger does no more than it must (not yet read: the first reader takes the
-- counter, which includes this commit).
function M.written(revision)
    box.on_commit(function()
        if committed ~= nil and revision > committed then
            committed = revision
        end
        changes_cond:broadcast()
    end)
end

-- Called after anything that can take access away. A spurious signal (a transaction
-- that then rolls back) costs one needless check of the open watches, nothing more.
function M.access_changed()
    access_epoch = access_epoch + 1
    changes_cond:broadcast()
end

-- The oldest revision the log still holds, or the next one when it is empty.
function M.oldest_revision()
    local first = box.space.changes.index.primary:min()
    return first ~= nil and first[1] or M.committed_revision() + 1
end

-- Whether the changes after `after` are gone from the log (trimmed by age or count).
function M.compacted(after)
    return after < M.committed_revision() and after + 1 < M.oldest_revision()
end

-- Change-log rows {revision, time, count, events} with after < revision <= `upto` (nil:
-- every committed one), at least one row and then as many as keep the events within
-- `max_events`. Waits up to `timeout` seconds while there are none and the access epoch
-- is still `epoch`. Returns 'ok', the rows, the committed revision and the access epoch;
-- or 'compacted' and the oldest revision still held.
function M.changes(after, upto, max_events, timeout, epoch)
    local deadline = fiber.clock() + timeout
    while M.committed_revision() <= after and access_epoch == epoch do
        local left = deadline - fiber.clock()
        if left <= 0 then
            break
        end
        changes_cond:wait(left)
    end
    if M.compacted(after) then
        return 'compacted', M.oldest_revision()
    end
    local last = M.committed_revision()
    if upto ~= nil and upto < last then
        last = upto
    end
    local rows, events = {}, 0
    for _, row in box.space.changes.index.primary:pairs({after}, {iterator = 'GT'}) do
        if row[1] > last or (#rows > 0 and events + row[3] > max_events) then
            break
        end
        table.insert(rows, row)
        events = events + row[3]
    end
    return 'ok', rows, M.committed_revision(), access_epoch
end

function M.position()
    return M.committed_revision(), access_epoch
end

-- Open watches, counted per user across every kv_svc process. A process that goes away
-- takes its watches with it (on_disconnect), so a killed kv_svc leaves no count behind.
local watches = {}  -- id -> {user = login in lower case, session = session id}
local per_user = {}
local next_id = 0

function M.register(login, limit)
    local user = login:lower()
    local open = per_user[user] or 0
    if open >= limit then
        return nil, open
    end
    next_id = next_id + 1
    watches[next_id] = {user = user, session = box.session.id()}
    per_user[user] = open + 1
    return next_id
end

function M.unregister(id)
    local watch = watches[id]
    if watch == nil then
        return
    end
    watches[id] = nil
    per_user[watch.user] = per_user[watch.user] - 1
    if per_user[watch.user] == 0 then
        per_user[watch.user] = nil
    end
end

local function forget_session()
    local session = box.session.id()
    for id, watch in pairs(watches) do
        if watch.session == session then
            M.unregister(id)
        end
    end
end

local installed = nil
function M.start()
    box.session.on_disconnect(forget_session, installed)
    installed = forget_session
    -- Read now, before clients connect: no write is under way yet, so the counter is
    -- committed. (On a replica promoted later it is read at first use, which could meet
    -- a write in its WAL phase: docs/watch.md.)
    if not box.info.ro then
        committed = revision_counter()
    end
end

return M
