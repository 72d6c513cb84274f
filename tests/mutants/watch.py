"""Watch streams: kv_svc/watching.py, tarantool/tkv/watch.lua, the change log in
tarantool/tkv/store.lua, and the access epoch bumps in tarantool/tkv/api.lua and sharing.lua."""

from tests.mutants.mutant import Mutant

WATCH = "tests/integration/test_watch.py"
HISTORY = "tests/reliability/test_watch_history.py"

MUTANTS = [
    Mutant(
        "a revoked grant leaves open watches running",
        "tarantool/tkv/sharing.lua",
        "        return 'no_grant', grantee, prefix\n    end\n    watch.access_changed()",
        "        return 'no_grant', grantee, prefix\n    end",
        (f"{WATCH}::test_a_revoked_grant_ends_the_grantees_watch_and_refuses_their_next_call",),
    ),
    Mutant(
        "watch history starts after the first message went out",
        "kv_svc/watching.py",
        "        after = watch.sent\n        yield watch_response((), after)",
        "        yield watch_response((), watch.sent)\n        after = watch.sent",
        # The unit test catches it every time; the history test only when a change comes in
        # the microseconds the first message takes to go out.
        (
            "tests/unit/test_watch_handover.py::"
            "test_the_history_starts_where_the_watch_opened_even_if_the_follower_moves_on_meanwhile",
            HISTORY,
        ),
    ),
    # Endings: each way a token or an account stops counting ends its open watches.
    Mutant(
        "Logout leaves the token's watches running",
        "tarantool/tkv/api.lua",
        "    revocations.revoke(jti, expires_at)\n    watch.access_changed()  -- the token's open watches end",
        "    revocations.revoke(jti, expires_at)\n    -- the token's open watches end",
        (f"{WATCH}::test_logout_ends_the_watch_within_a_second",),
    ),
    Mutant(
        "token expiry ends a watch only at its next progress message",
        "kv_svc/watching.py",
        "await watch.wait(min(expiry, last_sent + self._settings.progress_seconds) - now)",
        "await watch.wait(last_sent + self._settings.progress_seconds - now)",
        (f"{WATCH}::test_token_expiry_ends_the_watch_within_a_second",),
    ),
    Mutant(
        "LogoutAll leaves the account's watches running",
        "tarantool/tkv/api.lua",
        "    box.space.users:update(user.login, {{'+', 'token_epoch', 1}})\n    watch.access_changed()\n",
        "    box.space.users:update(user.login, {{'+', 'token_epoch', 1}})\n",
        (f"{WATCH}::test_logout_all_ends_every_watch_of_the_account_within_a_second",),
    ),
    Mutant(
        "ChangePassword leaves the account's watches running",
        "tarantool/tkv/api.lua",
        "{'+', 'token_epoch', 1}})\n    watch.access_changed()\n    return 'ok'\nend)\n\n-- Advances the token epoch",
        "{'+', 'token_epoch', 1}})\n    return 'ok'\nend)\n\n-- Advances the token epoch",
        (f"{WATCH}::test_changing_the_password_ends_every_watch_of_the_account_within_a_second",),
    ),
    Mutant(
        "DeleteAccount leaves the account's watches running",
        "tarantool/tkv/api.lua",
        "        box.space.users:delete(user.login)\n    end)\n    watch.access_changed()\n",
        "        box.space.users:delete(user.login)\n    end)\n",
        (f"{WATCH}::test_deleting_the_account_ends_every_watch_of_the_account_within_a_second",),
    ),
    # The per-user limit.
    Mutant(
        "a user may open one watch more than the limit",
        "tarantool/tkv/watch.lua",
        "    if open >= limit then\n        return nil, open",
        "    if open > limit then\n        return nil, open",
        (f"{WATCH}::test_a_user_may_have_only_so_many_watches_open",),
    ),
    Mutant(
        "the watch limit is counted per kv_svc process",
        "tarantool/tkv/watch.lua",
        "    local user = login:lower()\n    local open = per_user[user] or 0",
        "    local user = login:lower() .. '@' .. box.session.id()\n    local open = per_user[user] or 0",
        (f"{WATCH}::test_the_watch_limit_counts_every_kv_svc_process_and_a_killed_one_gives_its_watches_back",),
    ),
    Mutant(
        "a SIGKILLed kv_svc's watches keep counting",
        "tarantool/tkv/watch.lua",
        "    box.session.on_disconnect(forget_session, installed)\n    installed = forget_session",
        "    installed = forget_session",
        (f"{WATCH}::test_the_watch_limit_counts_every_kv_svc_process_and_a_killed_one_gives_its_watches_back",),
    ),
    # A watcher that cannot keep up.
    Mutant(
        "a watcher that cannot keep up is never ended (buffer counted in messages)",
        "kv_svc/watching.py",
        "        if self._queued_bytes > self._buffer_bytes:",
        "        if len(self._queue) > self._buffer_bytes:",
        (f"{WATCH}::test_a_slow_consumer_is_ended_while_others_keep_up",),
    ),
    # Compaction.
    Mutant(
        "a watch that would miss one compacted change is served",
        "tarantool/tkv/watch.lua",
        "    return after < M.committed_revision() and after + 1 < M.oldest_revision()",
        "    return after < M.committed_revision() and after + 2 < M.oldest_revision()",
        (f"{WATCH}::test_past_the_change_log_a_watch_is_out_of_range_with_the_oldest_revision",),
    ),
    Mutant(
        "the change log is never trimmed by age",
        "tarantool/tkv/expiry.lua",
        "if #doomed >= 1000 or (held - dropped <= max_count and batch[2] >= cutoff) then",
        "if #doomed >= 1000 or held - dropped <= max_count then",
        (f"{WATCH}::test_changes_older_than_the_log_keeps_are_compacted",),
    ),
    # Resuming.
    Mutant(
        "a resumed watch repeats the change it resumed from",
        "tarantool/tkv/watch.lua",
        "box.space.changes.index.primary:pairs({after}, {iterator = 'GT'})",
        "box.space.changes.index.primary:pairs({after}, {iterator = 'GE'})",
        (f"{WATCH}::test_a_resumed_watch_gets_every_later_change_once_in_order",),
    ),
    Mutant(
        "a resumed watch skips the first change after its start",
        "kv_svc/watching.py",
        "await self._storage.changes(after, history_end, self._settings.batch_events, 0, 0)",
        "await self._storage.changes(after + 1, history_end, self._settings.batch_events, 0, 0)",
        (f"{WATCH}::test_a_resumed_watch_gets_every_later_change_once_in_order",),
    ),
    # The change log itself: the history checker holds the watch to the acknowledged writes,
    # so a log that loses changes fails it (against the log, it passed).
    Mutant(
        "a write batch logs only its last change",
        "tarantool/tkv/store.lua",
        "    table.insert(events, '\\x97' .. encode(kind)",
        "    events[1] = ('\\x97' .. encode(kind)",
        (HISTORY,),
    ),
]
