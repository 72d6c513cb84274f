"""The switch from a watch's history to its live changes (kv_svc/watching.py, WatchHub's
_messages), driven step by step with a scripted store: the history must start from the
revision the watch opened at, whatever the follower offers while the first message is being
sent. In a live run that window is microseconds wide, so only luck lets the history test
of tests/reliability catch a fault here; this one does every time."""

from __future__ import annotations

from kv_svc.config import WatchSettings
from kv_svc.storage import Changes
from kv_svc.watching import Event, Watch, WatchHub
from tkv_common.tokens import Claims

SETTINGS = WatchSettings(
    max_per_user=16, buffer_bytes=1 << 20, progress_seconds=10, poll_seconds=1, batch_events=100,
    message_rate=1000, coalesce_seconds=0.01,
)  # fmt: skip


def row(revision: int, key: str) -> list:
    # A change-log row: revision, time, count, events ([type, namespace, key, value,
    # create_version, owner, expire_time]).
    return [revision, 100.0 + revision, 1, [["PUT", "alice", key, None, revision, "alice", 0]]]


class ScriptedLog:
    """The change log of the store: rows 1..10; remembers what the hub asked for."""

    def __init__(self):
        self.rows = [row(revision, f"p/{revision}") for revision in range(1, 11)]
        self.asked: list[tuple[int, int | None]] = []

    async def changes(self, after, upto, max_events, wait_seconds, access_epoch):
        self.asked.append((after, upto))
        selected = [r for r in self.rows if after < r[0] <= (upto if upto is not None else 1 << 60)]
        return Changes(rows=selected[:max_events], **_rest(Changes))


def _rest(cls) -> dict:
    """Changes' other fields, whatever they are, at neutral values."""
    return {name: 0 for name in cls.__dataclass_fields__ if name != "rows"}


async def test_the_history_starts_where_the_watch_opened_even_if_the_follower_moves_on_meanwhile():
    log = ScriptedLog()
    hub = WatchHub(log, SETTINGS)
    claims = Claims("alice", "t1", 0, 2**31, "a1", 0)
    watch = Watch(
        opened_id=1, claims=claims, namespace="alice", prefix="p/", key=None, keys_only=True,
        start_revision=3, buffer_bytes=1 << 20,
    )  # fmt: skip
    messages = hub._messages(watch, history_end=8)
    first = await anext(messages)  # "open after revision 3"
    assert first
    # While that message is on its way, the follower offers revisions 9 and 10 (after the
    # history's end, 8): the watch's `sent` moves to 10.
    live = [(revision, [Event(revision, 100.0 + revision, log.rows[revision - 1][3][0])]) for revision in (9, 10)]
    watch.offer(live, watch.message_for(live))
    await anext(messages)  # the history
    assert log.asked and log.asked[0] == (3, 8), log.asked  # 4..8 read, not skipped
