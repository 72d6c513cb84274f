"""The housekeeping fiber (tarantool/tkv/housekeeping.lua): what it purges and what it keeps."""

import time

import pytest

from tests.stack import Stack, tarantool, wait_until

pytestmark = pytest.mark.slow

DAY = 24 * 3600


def test_expired_revocations_and_idle_login_counters_are_purged_the_rest_kept(tmp_path):
    stack = Stack(tmp_path / "purge", extra_env={"TKV_PURGE_INTERVAL_SECONDS": "0.2"})
    process = tarantool(stack).start()
    try:
        now = int(time.time())
        stack.console(
            f"box.space.revoked_tokens:insert({{'expired', {now - 5}}});"
            f"box.space.revoked_tokens:insert({{'live', {now + 600}}});"
            # login, client, failures, locked_until, updated_at
            f"box.space.login_locks:insert({{'idle', '127.0.0.2', 3, {now - 2 * DAY}, {now - 2 * DAY}}});"
            f"box.space.login_locks:insert({{'recent', '127.0.0.2', 3, {now - 10}, {now - 10}}});"
            # Idle for two days but still locked: kept until the lock is over.
            f"box.space.login_locks:insert({{'locked', '127.0.0.2', 30, {now + 600}, {now - 2 * DAY}}});"
            # login, window_start, failures, last_attempt
            f"box.space.login_rates:insert({{'idle', {now - 2 * DAY}, 150, {now - 2 * DAY}}});"
            f"box.space.login_rates:insert({{'recent', {now - 10}, 150, {now - 10}}})"
        )

        def purged() -> bool:
            return all(
                stack.console(expression) == "true"
                for expression in (
                    "box.space.revoked_tokens:get('expired') == nil",
                    "box.space.login_locks:get({'idle', '127.0.0.2'}) == nil",
                    "box.space.login_rates:get('idle') == nil",
                )
            )

        wait_until(purged, "the purge", timeout=10)
        assert stack.console("box.space.revoked_tokens:get('live') ~= nil") == "true"
        for kept in ("recent", "locked"):
            assert stack.console(f"box.space.login_locks:get({{'{kept}', '127.0.0.2'}}) ~= nil") == "true", kept
        assert stack.console("box.space.login_rates:get('recent') ~= nil") == "true"
    finally:
        process.stop()
