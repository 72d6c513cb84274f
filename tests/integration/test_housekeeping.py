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
            # login, failures, locked_until, updated_at
            f"box.space.login_attempts:insert({{'idle', 3, {now - 2 * DAY}, {now - 2 * DAY}}});"
            f"box.space.login_attempts:insert({{'recent', 3, {now - 10}, {now - 10}}});"
            # Idle for two days but still locked: kept until the lock is over.
            f"box.space.login_attempts:insert({{'locked', 30, {now + 600}, {now - 2 * DAY}}})"
        )

        def purged() -> bool:
            return stack.console("box.space.revoked_tokens:get('expired') == nil") == "true" and (
                stack.console("box.space.login_attempts:get('idle') == nil") == "true"
            )

        wait_until(purged, "the purge", timeout=10)
        assert stack.console("box.space.revoked_tokens:get('live') ~= nil") == "true"
        for kept in ("recent", "locked"):
            assert stack.console(f"box.space.login_attempts:get('{kept}') ~= nil") == "true", kept
    finally:
        process.stop()
