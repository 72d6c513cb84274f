"""The watch history checker (docs/api.md, "Watch"), against real processes.

Writers put, delete and let pairs expire in one user's namespace while watchers follow
prefixes of it: over native gRPC through the gateway, straight to kv_svc, and over HTTP
(newline-delimited JSON through Envoy). Some watchers hang up on purpose now and then;
kv_svc is SIGKILLed and restarted, and Envoy restarted, in the middle of it. Each watcher
resumes from the last revision it saw.

The reference is what the writers were told, not the change log the watch itself follows
(a log that lost or repeated a change would agree with a watch of it): at the end every
watcher must hold, in revision order and once each, every acknowledged write under its
prefix at the revision, with the type and value, the writer was told; one EXPIRE after its
put for each pair put with a TTL; and nothing else but the writes whose outcome no writer
learnt (the call failed: applied or not). A watcher of the whole namespace must hold every
revision from its start to the end, since only this test writes to the store.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import signal
import threading
import time
from dataclasses import dataclass, field

import grpc
import pytest
from google.protobuf import duration_pb2, json_format, struct_pb2

from tests.e2e.http_client import Stream
from tests.stack import Stack, envoy, kv_svc, start_all, stop_all
from tkv.auth.v1 import auth_pb2, auth_pb2_grpc
from tkv.kv.v2 import kv_pb2 as v2
from tkv.kv.v2 import kv_pb2_grpc as v2_grpc

PASSWORD = "Secr3t!pass"
WRITE_SECONDS = 12
PREFIXES = ["p0/", "p1/", ""]
# Idle watches get progress every second here (10 s by default), so a watcher that lost its
# stream without an error notices within READ_TIMEOUT.
PROGRESS_SECONDS = 1
READ_TIMEOUT = 5.0


@pytest.fixture
def stack(tmp_path):
    stack = Stack(tmp_path / "stack", extra_env={"TKV_KV_WATCH_PROGRESS_SECONDS": str(PROGRESS_SECONDS)})
    stack.processes = start_all(stack)
    yield stack
    stop_all(stack.processes, signal.SIGKILL)


@dataclass
class Watcher:
    name: str
    prefix: str
    via: str  # "gateway", "direct" or "http"
    hang_up_every: int  # messages; 0 = never on purpose
    start: int
    last: int = 0  # the last revision seen (events or progress): where it resumes
    events: list[tuple[int, str, str, object]] = field(default_factory=list)
    hang_ups: int = 0  # resumed after hanging up on purpose
    faults: int = 0  # resumed after the stream failed or could not be opened

    def take(self, message: dict) -> None:
        revision = int(message.get("revision", 0))
        for event in message.get("events", []):
            pair = event["pair"]
            assert int(pair["version"]) <= revision  # a message may hold several batches
            self.events.append((int(pair["version"]), event["type"], pair["key"], pair.get("value")))
        self.last = max(self.last, revision)


async def watch_grpc(watcher: Watcher, address: str, token: str, until: asyncio.Event) -> None:
    while not until.is_set():
        try:
            async with grpc.aio.insecure_channel(address) as channel:
                stream = v2_grpc.KeyValueServiceStub(channel).Watch(
                    v2.WatchRequest(namespace="me", prefix=watcher.prefix, start_revision=watcher.last),
                    metadata=[("authorization", f"Bearer {token}")],
                )
                for count in itertools.count(1):
                    message = (
                        await asyncio.wait_for(stream.read(), READ_TIMEOUT) if not until.is_set() else grpc.aio.EOF
                    )
                    if message == grpc.aio.EOF:
                        break
                    watcher.take(json_format.MessageToDict(message, preserving_proto_field_name=True))
                    if watcher.hang_up_every and count % watcher.hang_up_every == 0:
                        watcher.hang_ups += 1
                        break
                stream.cancel()
        except (grpc.aio.AioRpcError, TimeoutError):
            watcher.faults += 1
            await asyncio.sleep(0.1)


def watch_http(watcher: Watcher, gateway: str, token: str, until: threading.Event) -> None:
    while not until.is_set():
        try:
            body = {"prefix": watcher.prefix, "start_revision": str(watcher.last)}
            with Stream(gateway, "/v2/namespaces/me/pairs:watch", body, token, timeout=READ_TIMEOUT) as stream:
                if stream.status != 200:  # 503 while kv_svc is away
                    raise OSError(f"HTTP {stream.status}")
                for count in itertools.count(1):
                    message = stream.next_message() if not until.is_set() else None
                    if message is None:
                        break
                    watcher.take(message)
                    if watcher.hang_up_every and count % watcher.hang_up_every == 0:
                        watcher.hang_ups += 1
                        break
        except (OSError, ValueError):
            watcher.faults += 1
            time.sleep(0.1)


# A write: (revision, type, key, value or None, put with a TTL).
Change = tuple[int, str, str, object, bool]


@dataclass
class Written:
    """What the writers were told, and what they tried without learning the outcome."""

    acknowledged: list[Change] = field(default_factory=list)
    # key -> (type, value or None, with a TTL) of a write whose call failed: it may or may
    # not have been applied (each key is written once and deleted at most once, and a key
    # whose write failed is not written again).
    unknown: dict[str, tuple[str, object, bool]] = field(default_factory=dict)
    puts: int = 0
    deletes: int = 0
    expiring: int = 0
    failed: int = 0


async def write(stub, md, writer: int, written: Written, until: float) -> None:
    rng = random.Random(writer)
    live: list[str] = []
    for n in itertools.count():
        if time.monotonic() > until:
            return
        roll = rng.random()
        if roll < 0.25 and live:
            kind, key, value, ttl = "DELETE", live.pop(rng.randrange(len(live))), None, False
            call = stub.DeletePair(v2.DeletePairRequest(namespace="me", key=key), metadata=md, timeout=2)
        else:
            kind, key, value = "PUT", f"{rng.choice(PREFIXES[:2])}{writer}-{n}", {"writer": writer, "n": n}
            request = v2.PutPairRequest(namespace="me", key=key, value=json_format.ParseDict(value, struct_pb2.Value()))
            ttl = roll > 0.85  # expires after 1 s: the sweep's EXPIRE event
            if ttl:
                request.ttl.CopyFrom(duration_pb2.Duration(seconds=1))
            call = stub.PutPair(request, metadata=md, timeout=2)
        try:
            response = await call
        except grpc.aio.AioRpcError:
            # kv_svc or Envoy away: applied or not, nobody knows.
            written.unknown[key] = (kind, value, ttl)
            written.failed += 1
            await asyncio.sleep(0.05)
        else:
            written.acknowledged.append((response.revision, kind, key, value, ttl))
            if kind == "DELETE":
                written.deletes += 1
            else:
                written.puts += 1
                written.expiring += ttl
                if not ttl:
                    live.append(key)
        await asyncio.sleep(0.01)


async def all_swept(stack, timeout: float = 10.0) -> None:
    """Waits until no pair with an expiry is left (each swept, with its EXPIRE change);
    fails the test after `timeout` seconds (the sweep runs every 0.5 s)."""
    deadline = time.monotonic() + timeout
    query = "box.space.pairs.index.expire_time:count({0}, {iterator = 'GT'})"
    while (left := int(await asyncio.to_thread(stack.console, query))) > 0:
        if time.monotonic() > deadline:
            pytest.fail(f"{left} pairs with a TTL still there {timeout} s after the writes")
        await asyncio.sleep(0.1)


def check(watcher: Watcher, written: Written, start: int, end: int) -> list[tuple[int, str, str, object]]:
    """Holds what `watcher` got against what the writers were told (the module's rules);
    returns its events up to `end`."""
    got = [event for event in watcher.events if event[0] <= end]
    revisions = [revision for revision, *_ in got]
    assert revisions == sorted(revisions), (watcher.name, "out of order", _first_unsorted(revisions))
    changes = [(revision, key) for revision, _, key, _ in got]
    assert len(set(changes)) == len(changes), (watcher.name, "twice", _repeated(changes))
    by_change = {(revision, key): (kind, value) for revision, kind, key, value in got}
    mine = [change for change in written.acknowledged if change[2].startswith(watcher.prefix)]
    for revision, kind, key, value, _ in mine:
        assert by_change.get((revision, key)) == (kind, value), (watcher.name, "acknowledged", revision, kind, key)
    acknowledged = {(revision, key) for revision, _, key, _, _ in mine}
    with_ttl = {key for _, _, key, _, ttl in written.acknowledged if ttl}
    with_ttl |= {key for key, (_, _, ttl) in written.unknown.items() if ttl}
    for revision, kind, key, value in got:
        if (revision, key) in acknowledged:
            continue
        if kind == "EXPIRE":
            assert key in with_ttl, (watcher.name, "expired without a TTL", revision, key)
        else:
            assert written.unknown.get(key, ())[:2] == (kind, value), (watcher.name, "never written", revision, key)
    for revision, _, key, _, ttl in mine:
        if ttl:
            expiries = [r for r, kind, k, _ in got if k == key and kind == "EXPIRE"]
            assert len(expiries) == 1 and expiries[0] > revision, (watcher.name, "expiry", key, revision, expiries)
    if watcher.prefix == "":
        missing = sorted(set(range(start + 1, end + 1)) - set(revisions))
        assert not missing, (watcher.name, "revisions missing", missing[:10], len(missing))
    return got


async def test_every_watcher_sees_exactly_the_acknowledged_writes_across_kills_and_restarts(stack, report):
    gateway = f"127.0.0.1:{stack.gateway_port}"
    direct = f"127.0.0.1:{stack.kv_port}"
    async with grpc.aio.insecure_channel(gateway) as channel:
        auth = auth_pb2_grpc.AuthServiceStub(channel)
        login = f"hist{random.randrange(10**8)}"
        await auth.Register(auth_pb2.RegisterRequest(login=login, password=PASSWORD, name="Anna", surname="Smith"))
        token = (await auth.Login(auth_pb2.LoginRequest(login=login, password=PASSWORD))).token
        md = [("authorization", f"Bearer {token}")]
        stub = v2_grpc.KeyValueServiceStub(channel)
        start = (
            await stub.PutPair(
                v2.PutPairRequest(namespace="me", key="start", value=struct_pb2.Value(number_value=0)), metadata=md
            )
        ).revision

        watchers = [
            Watcher("gateway p0/", "p0/", "gateway", 0, start),
            Watcher("gateway p1/ hangs up", "p1/", "gateway", 40, start),
            Watcher("direct all", "", "direct", 0, start),
            Watcher("direct p0/ hangs up", "p0/", "direct", 25, start),
            Watcher("http all", "", "http", 0, start),
            Watcher("http p1/ hangs up", "p1/", "http", 30, start),
        ]
        for watcher in watchers:
            watcher.last = start
        stop_grpc, stop_http = asyncio.Event(), threading.Event()
        tasks = [
            asyncio.create_task(watch_grpc(w, gateway if w.via == "gateway" else direct, token, stop_grpc))
            for w in watchers
            if w.via != "http"
        ]
        threads = [
            threading.Thread(target=watch_http, args=(w, gateway, token, stop_http), daemon=True)
            for w in watchers
            if w.via == "http"
        ]
        for thread in threads:
            thread.start()

        written = Written()
        until = time.monotonic() + WRITE_SECONDS
        writers = [asyncio.create_task(write(stub, md, i, written, until)) for i in range(3)]
        # Faults: kv_svc killed (and started again by its supervisor: here, the test), then
        # Envoy restarted, while everything runs.
        await asyncio.sleep(WRITE_SECONDS / 4)
        stack.processes["kv_svc"].popen.kill()
        stack.processes["kv_svc"].popen.wait()
        await asyncio.sleep(0.5)
        stack.processes["kv_svc"] = await asyncio.to_thread(kv_svc(stack).start)
        await asyncio.sleep(WRITE_SECONDS / 4)
        stack.processes["envoy"].stop()
        stack.processes["envoy"] = await asyncio.to_thread(envoy(stack).start)
        await asyncio.gather(*writers)

        # Everything written has expired and been swept (TTL 1 s, sweep within 2 s); then a
        # last write marks the end, and every watcher must reach it.
        await all_swept(stack)
        end = (
            await stub.PutPair(
                v2.PutPairRequest(namespace="me", key="p0/end", value=struct_pb2.Value(number_value=1)),
                metadata=md,
                timeout=5,
            )
        ).revision
        written.acknowledged.append((end, "PUT", "p0/end", 1, False))
        deadline = time.monotonic() + 20
        while any(w.last < end for w in watchers) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        stop_grpc.set(), stop_http.set()
        await asyncio.gather(*tasks)
        for thread in threads:
            thread.join(5)

    # Each write got a revision of its own: the writers were told each revision once.
    told = [revision for revision, *_ in written.acknowledged]
    assert len(set(told)) == len(told), ("a revision told twice", _repeated(told))
    figures = {
        "written": {
            "puts": written.puts,
            "deletes": written.deletes,
            "with_ttl": written.expiring,
            "failed": written.failed,
        },
        "watchers": {},
    }
    for watcher in watchers:
        got = check(watcher, written, start, end)
        figures["watchers"][watcher.name] = {
            "delivered": len(got),
            "expired": sum(1 for _, kind, _, _ in got if kind == "EXPIRE"),
            "hang_ups": watcher.hang_ups,
            "faults": watcher.faults,
        }
    report(figures)
    assert figures["watchers"]["direct all"]["expired"] > 0 and written.deletes > 0
    # Every watcher lived through at least one fault, and those that hang up did.
    assert all(w.faults >= 1 and (w.hang_ups >= 5 or not w.hang_up_every) for w in watchers), figures


def _first_unsorted(revisions: list[int]) -> str:
    for i, (a, b) in enumerate(itertools.pairwise(revisions)):
        if b < a:
            return f"at {i}: {a} then {b}"
    return ""


def _repeated(items: list) -> list:
    seen, repeated = set(), []
    for item in items:
        if item in seen:
            repeated.append(item)
        seen.add(item)
    return repeated[:10]
