"""Watch (docs/api.md, "Watch"): one follower per process fans the change log out to every
open watch of that process.

The follower is one long poll at a time on Tarantool (tkv.kv_changes, which waits on a
fiber.cond until something commits); watchers never poll. It runs only while this process
has watches open, so it costs nothing otherwise. Per poll it makes one storage call
(shared by all watchers), encodes each event once (with and without its value), and builds
one message per distinct target (namespace, prefix or key, keys_only) from the events that
match, which every watch of that target queues as the same bytes (docs/watch.md has the
measured costs).

A watch's history before the follower's position is read by the watch itself, once, when
it opens (resuming from a revision); from then on it takes what the follower hands it,
skipping what it already sent, so the switch from history to live loses and repeats
nothing. Each watch buffers at most `buffer_bytes` of messages its client has not taken:
past that it is ended with RESOURCE_EXHAUSTED and the client resumes from its last
revision, so a slow reader never grows the server's memory.

Access is re-checked when Tarantool says it may have changed (a token revoked, a grant
deleted, an account gone: tkv/watch.lua access epoch), for all open watches of the
process in one call; token expiry is a timer per watch.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from tkv_common import metrics
from tkv_common.errors import PermissionDenied, ResourceExhausted, TkvError, Unavailable
from tkv_common.tokens import TOKEN_PROBLEMS, Claims, token_expired

from . import messages, wire
from .config import WatchSettings
from .names import requested_name
from .storage import Row, TarantoolAdapter
from .values import varint

log = logging.getLogger(__name__)

# Queued messages are joined into one of at most this size before they are sent.
MAX_MESSAGE_BYTES = 1 << 20
# Event.Type numbers (protos/tkv/kv/v2/kv.proto) by the change log's names.
EVENT_TYPES = {"PUT": 1, "DELETE": 2, "EXPIRE": 3}
# A change-log event: [type, namespace, key, value, create_version, owner, expire_time].
_TYPE, _NAMESPACE, _KEY, _VALUE, _CREATE_VERSION, _OWNER, _EXPIRE_TIME = range(7)


class Event:
    """One change of a write batch, encoded once however many watchers get it."""

    def __init__(self, revision: int, time_: float, fields: Sequence[Any]):
        self.revision = revision
        self.time = time_  # when its write ran (Tarantool's clock, Unix seconds)
        self.namespace: str = fields[_NAMESPACE]
        self.key: str = fields[_KEY]
        self._fields = fields

    def _encode(self, with_value: bool) -> bytes:
        fields = self._fields
        row = (
            fields[_NAMESPACE],
            fields[_KEY],
            fields[_VALUE] if with_value else None,
            self.revision,
            fields[_CREATE_VERSION],
            fields[_OWNER],
            self.time,
            fields[_EXPIRE_TIME],
        )
        pair = wire.pair(row)
        return b"\x08" + varint(EVENT_TYPES[fields[_TYPE]]) + b"\x12" + varint(len(pair)) + pair

    @functools.cached_property
    def with_value(self) -> bytes:
        """An encoded tkv.kv.v2.Event: type (field 1), pair (field 2)."""
        return self._encode(True)

    @functools.cached_property
    def keys_only(self) -> bytes:
        return self._encode(False)


def events_of(row: Row) -> list[Event]:
    """The events of one change-log row [revision, time, count, events]."""
    revision, time_, _, fields = row
    return [Event(revision, time_, event) for event in fields]


def watch_response(events: Sequence[bytes], revision: int) -> bytes:
    """An encoded tkv.kv.v2.WatchResponse: events (field 1), revision (field 2)."""
    parts = []
    for event in events:
        parts += (b"\x0a", varint(len(event)), event)
    parts += (b"\x10", varint(revision))
    return b"".join(parts)


# An encoded WatchResponse, the number of events in it, and when the write of its oldest
# event ran (Unix seconds).
Message = tuple[bytes, int, float]

STREAMS_OPEN = metrics.Gauge(metrics.REGISTRY, "tkv_watch_streams_open", "Watch streams open.")
EVENTS_DELIVERED = metrics.Counter(
    metrics.REGISTRY,
    "tkv_watch_events_delivered_total",
    "Events handed to watch streams (an event sent to 100 watchers counts 100).",
)
# Measured once a message is sent, from its oldest event: what a watcher waits for a change
# on the server's side (the follower's pause, the fan-out, the stream's queue and send).
# Tarantool's clock against this process's: across hosts, their skew is in it too.
WATCH_LAG = metrics.Histogram(
    metrics.REGISTRY,
    "tkv_watch_lag_seconds",
    "Per live watch message: seconds from the write of its oldest event to the message sent.",
    # Under load the follower's pause (up to TKV_KV_WATCH_COALESCE_SECONDS, 50 ms) puts most
    # lags within 0-50 ms: finer buckets there than the call latencies'.
    buckets=(0.001, 0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


class Watch:
    """One open watch: what it follows, what it has sent, and what waits to be sent."""

    def __init__(
        self,
        *,
        opened_id: int,
        claims: Claims,
        namespace: str,
        prefix: str,
        key: str | None,
        keys_only: bool,
        start_revision: int,
        buffer_bytes: int,
    ):
        self.id = opened_id
        self.claims = claims
        self.namespace = namespace  # as stored
        self.prefix = prefix
        self.key = key
        self.keys_only = keys_only
        self.sent = start_revision  # every matching change up to this revision is sent or queued
        # The client has been handed every matching change up to this revision: where it
        # resumes when the watch ends.
        self.delivered = start_revision
        self._buffer_bytes = buffer_bytes
        # revision, message, events, when the write of its oldest event ran
        self._queue: collections.deque[tuple[int, bytes, int, float]] = collections.deque()
        self._queued_bytes = 0
        self._wake = asyncio.Event()
        self.ended: TkvError | None = None

    def matches(self, event: Event) -> bool:
        if event.namespace != self.namespace:
            return False
        if self.key is not None:
            return event.key == self.key
        return event.key.startswith(self.prefix)

    def select(self, events: Sequence[Event]) -> list[bytes]:
        return [event.keys_only if self.keys_only else event.with_value for event in events if self.matches(event)]

    @property
    def target(self) -> tuple[str, str, str | None, bool]:
        """What the watch selects: watches with the same target get the same messages."""
        return (self.namespace, self.prefix, self.key, self.keys_only)

    def message_for(self, batches: Sequence[tuple[int, Sequence[Event]]]) -> Message | None:
        """One message (its bytes, number of events, and when its oldest event's write ran)
        with the matching events of write batches (revision, events) newer than what was
        sent, or None when none match."""
        selected: list[bytes] = []
        oldest = 0.0
        for revision, events in batches:
            if revision > self.sent:
                chosen = self.select(events)
                if chosen and not selected:
                    oldest = events[0].time
                selected += chosen
        return (watch_response(selected, batches[-1][0]), len(selected), oldest) if selected else None

    def offer(self, batches: Sequence[tuple[int, Sequence[Event]]], message: Message | None) -> None:
        """Queues `message` (message_for(batches), possibly made for another watch with the
        same target that had sent as much) unless the batches were all sent already."""
        if not batches or batches[-1][0] <= self.sent or self.ended is not None:
            return
        revision = self.sent = batches[-1][0]
        if message is None:
            return
        self._queue.append((revision, *message))
        self._queued_bytes += len(message[0])
        if self._queued_bytes > self._buffer_bytes:
            self.end(ResourceExhausted(
                messages.WATCH_FELL_BEHIND.format(revision=self.delivered), reason="WATCH_FELL_BEHIND"
            ))  # fmt: skip
        self._wake.set()

    def end(self, error: TkvError) -> None:
        if self.ended is None:
            self.ended = error
            self._queue.clear()
            self._queued_bytes = 0
            self._wake.set()

    def take(self, max_bytes: int) -> tuple[bytes, float] | None:
        """What is queued, as one message of at most about `max_bytes` (never less than one
        queued message), and when the write of its oldest event ran: encoded
        WatchResponses concatenate into one (repeated events append, the last revision
        wins), so a client that reads more slowly than changes come gets fewer, larger
        messages instead of falling behind at once."""
        if not self._queue:
            return None
        parts, size, events = [], 0, 0
        oldest = self._queue[0][3]
        while self._queue and (not parts or size + len(self._queue[0][1]) <= max_bytes):
            revision, message, count, _ = self._queue.popleft()
            parts.append(message)
            size += len(message)
            events += count
            self.delivered = revision
        self._queued_bytes -= size
        EVENTS_DELIVERED.inc(events)
        return (parts[0] if len(parts) == 1 else b"".join(parts)), oldest

    async def wait(self, timeout: float) -> None:
        self._wake.clear()
        if self._queue or self.ended is not None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)


class WatchHub:
    """The watches of one process and the follower that feeds them."""

    def __init__(self, storage: TarantoolAdapter, settings: WatchSettings):
        self._storage = storage
        self._settings = settings
        self._watches: dict[int, Watch] = {}
        self._follower: asyncio.Task | None = None
        self.position = 0  # every change up to here has been offered to the open watches
        self._access_epoch = 0
        STREAMS_OPEN.set_function(lambda: len(self._watches))

    async def open(
        self, claims: Claims, namespace: str, prefix: str, key: str | None, start_revision: int, keys_only: bool
    ) -> AsyncIterator[bytes]:
        """The messages of a new watch, ending with its error (raised) or when the
        caller stops iterating."""
        opened = await self._storage.watch_open(
            claims, namespace, prefix, key, start_revision, self._settings.max_per_user
        )
        watch = Watch(
            opened_id=opened.id,
            claims=claims,
            namespace=opened.namespace,
            prefix=prefix,
            key=key,
            keys_only=keys_only,
            start_revision=opened.start_revision,
            buffer_bytes=self._settings.buffer_bytes,
        )
        if not self._following():
            # The first watch of this process: follow from the store's current revision.
            position, epoch = opened.start_revision, opened.access_epoch
            if start_revision > 0:  # the watch resumes: its start is not the current revision
                position, epoch = await self._storage.watch_position()
            if not self._following():  # still not, after the await
                self.position, self._access_epoch = position, epoch
                self._follower = asyncio.create_task(self._follow(), name="watch-follower")
        # No await between reading the position and registering: every change after it
        # reaches this watch through offer(), every one up to it through its history.
        history_end = self.position
        self._watches[watch.id] = watch
        try:
            async for message in self._messages(watch, history_end):
                yield message
        finally:
            del self._watches[watch.id]
            # If this fails, Tarantool forgets a gone connection's watches by itself.
            with contextlib.suppress(TkvError):
                await self._storage.watch_close([watch.id])

    def _following(self) -> bool:
        return self._follower is not None and not self._follower.done()

    async def _messages(self, watch: Watch, history_end: int) -> AsyncIterator[bytes]:
        # Before anything is yielded: while the consumer sends a message, the follower may
        # already offer newer changes, which move `watch.sent` on.
        after = watch.sent
        yield watch_response((), after)  # the watch is open: it starts after this revision
        # History: the changes between the revision asked for and the follower's position.
        while after < history_end and watch.ended is None:
            changes = await self._storage.changes(after, history_end, self._settings.batch_events, 0, 0)
            if not changes.rows:
                break
            selected = []
            for row in changes.rows:
                selected += watch.select(events_of(row))
            after = changes.rows[-1][0]
            if selected:
                watch.delivered = after
                EVENTS_DELIVERED.inc(len(selected))
                yield watch_response(selected, after)
        watch.sent = max(watch.sent, history_end)
        expires_in = watch.claims.expires_at - time.time()
        expiry = time.monotonic() + expires_in
        last_sent = time.monotonic()
        while True:
            taken = watch.take(MAX_MESSAGE_BYTES)
            if taken is not None:
                message, oldest = taken
                yield message
                # gRPC asks for the next message once this one is sent.
                WATCH_LAG.observe(max(0.0, time.time() - oldest))
                last_sent = time.monotonic()
                continue
            if watch.ended is not None:
                raise watch.ended
            now = time.monotonic()
            if now >= expiry:
                # Told in the service's refusal sentence by the call path (interceptors.py).
                raise token_expired()
            if now - last_sent >= self._settings.progress_seconds:
                # Every change up to the follower's position that this watch follows is
                # sent (the queue is empty): a client may resume from here.
                watch.sent = watch.delivered = max(watch.sent, self.position)
                yield watch_response((), watch.sent)
                last_sent = now
                continue
            await watch.wait(min(expiry, last_sent + self._settings.progress_seconds) - now)

    async def _follow(self) -> None:
        """Feeds the open watches until there are none; ends them all if the storage fails."""
        settings = self._settings
        busy = False  # the previous poll brought changes too
        try:
            while self._watches:
                changes = await self._storage.changes(
                    self.position, None, settings.batch_events, settings.poll_seconds, self._access_epoch
                )
                # What one poll brought goes out as one message per watch: under load a poll
                # brings several write batches, and a message per batch per watch would
                # cost the most where there are the most watchers.
                batches = [(row[0], events_of(row)) for row in changes.rows]
                if batches:
                    self._fan_out(batches)
                    self.position = batches[-1][0]
                    if busy:
                        # Changes keep coming: let the next poll bring several batches, so
                        # that a message per watch carries many of them. A message costs
                        # far more than an event, so the pause keeps this process within
                        # `message_rate` messages a second (at most `coalesce_seconds`):
                        # a few watchers get each change almost at once, many get them in
                        # fewer, larger messages. The first change after a quiet spell goes
                        # out at once (docs/watch.md).
                        pause = min(settings.coalesce_seconds, len(self._watches) / settings.message_rate)
                        await asyncio.sleep(pause)
                    busy = True
                else:
                    self.position = max(self.position, changes.committed)
                    busy = False
                if changes.access_epoch != self._access_epoch:
                    self._access_epoch = changes.access_epoch
                    await self._recheck()
        except Exception as error:
            if isinstance(error, TkvError):
                log.warning("watch follower stopped", extra={"error": type(error).__name__, "revision": self.position})
            else:
                log.exception("watch follower failed", extra={"revision": self.position})
            for watch in list(self._watches.values()):
                if isinstance(error, TkvError) and not isinstance(error, Unavailable):
                    watch.end(error)  # the log was trimmed past the follower: OUT_OF_RANGE
                else:
                    watch.end(Unavailable(
                        messages.WATCH_STORAGE_LOST.format(revision=watch.delivered), reason="STORAGE_UNAVAILABLE"
                    ))  # fmt: skip

    def _fan_out(self, batches: list[tuple[int, list[Event]]]) -> None:
        """Offers the batches to every watch, building each message once per target: many
        watches of one prefix (clients of one configuration, say) share its bytes, so that
        a delivered event costs a queue entry, not a filter and an encoding per watch."""
        first = batches[0][0]
        shared: dict[tuple, Message | None] = {}
        for watch in list(self._watches.values()):
            if watch.sent < first:  # has sent none of the batches: the common message fits
                target = watch.target
                if target not in shared:
                    shared[target] = watch.message_for(batches)
                watch.offer(batches, shared[target])
            else:
                watch.offer(batches, watch.message_for(batches))

    async def _recheck(self) -> None:
        """Ends the watches whose token or grant no longer allows them."""
        watches = list(self._watches.values())
        if not watches:
            return
        open_watches = [
            [watch.id, *watch.claims.storage_args(), watch.namespace, watch.prefix if watch.key is None else watch.key]
            for watch in watches
        ]
        for id_, problem in await self._storage.watch_check(open_watches):
            watch = self._watches.get(id_)
            if watch is None:
                continue
            if problem == "denied":
                shown = requested_name(watch.namespace)
                watch.end(PermissionDenied(messages.WATCH_ACCESS_LOST.format(namespace=shown), reason="GRANT_REVOKED"))
            else:
                watch.end(TOKEN_PROBLEMS[problem]())
