"""tkv_watch_lag_seconds measures a message from its *oldest* event's write (see
docs/operations.md): each message carries that time from the fan-out (kv_svc/watching.py
message_for) through the watch's queue, where messages joined into one keep the first's."""

from __future__ import annotations

from kv_svc.watching import Event, Watch
from tkv_common.tokens import Claims


def event(revision: int, written_at: float, key: str) -> Event:
    # [type, namespace, key, value, create_version, owner, expire_time]
    return Event(revision, written_at, ["PUT", "alice", key, None, revision, "alice", 0])


def watch(prefix: str = "p/") -> Watch:
    claims = Claims("alice", "t1", 0, 2**31, "a1", 0)
    return Watch(
        opened_id=1, claims=claims, namespace="alice", prefix=prefix, key=None, keys_only=True,
        start_revision=0, buffer_bytes=1 << 20,
    )  # fmt: skip


def test_a_message_carries_the_write_time_of_its_oldest_matching_event():
    batches = [
        (1, [event(1, 100.0, "other/x")]),  # matches nothing: not this message's
        (2, [event(2, 105.0, "p/a")]),
        (3, [event(3, 109.0, "p/b")]),
    ]
    _, count, oldest = watch().message_for(batches)
    assert (count, oldest) == (2, 105.0)


def test_messages_joined_into_one_keep_the_first_ones_time():
    w = watch()
    for revision, written_at in ((1, 100.0), (2, 104.0), (3, 108.0)):
        batches = [(revision, [event(revision, written_at, f"p/{revision}")])]
        w.offer(batches, w.message_for(batches))

    message, oldest = w.take(1 << 20)

    assert oldest == 100.0
    assert w.take(1 << 20) is None  # all three went out as one
    assert message.count(b"p/") == 3
