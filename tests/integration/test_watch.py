"""Watch against real Tarantool (SPEC-v2 "Watch"): events in revision order, resume without
gap or duplicate, progress, compaction, the per-user limit, slow consumers, and the ends a
stream must come to (token expiry or revocation, a lost grant) within 1 s."""

from __future__ import annotations

import asyncio
import time

import grpc
import jwt
import pytest
from google.rpc import error_details_pb2

from kv_svc.watching import WATCH_LAG
from tests.inprocess import register_and_login, start_services, stop_services, unique
from tests.integration.test_pairs_v2 import native, put, sign_in
from tests.stack import Stack, tarantool
from tests.status_details import detail_of, reason
from tests.tokens_for_tests import bearer, sign
from tkv.auth.v1 import auth_pb2
from tkv.kv.v2 import kv_pb2 as v2

EVENT = v2.Event.Type


def watch(svc, md, namespace="me", start=0, keys_only=False, **target):
    return svc.kv2.Watch(
        v2.WatchRequest(namespace=namespace, start_revision=start, keys_only=keys_only, **target), metadata=md
    )


async def next_message(stream, timeout: float = 5.0) -> v2.WatchResponse:
    return await asyncio.wait_for(stream.read(), timeout)


async def events(stream, count: int, timeout: float = 5.0) -> list[tuple[int, str, str, object]]:
    """The next `count` events as (revision, type, key, value or None), progress skipped."""
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < count:
        message = await next_message(stream, deadline - time.monotonic())
        assert message != grpc.aio.EOF
        for event in message.events:
            assert event.pair.version <= message.revision
            value = native(event.pair) if event.pair.HasField("value") else None
            got.append((event.pair.version, EVENT.Name(event.type), event.pair.key, value))
    return got


async def ended_with(stream, timeout: float) -> grpc.aio.AioRpcError:
    """Reads until the stream fails; it must within `timeout` seconds."""
    with pytest.raises(grpc.aio.AioRpcError) as error:
        async with asyncio.timeout(timeout):
            while (await stream.read()) != grpc.aio.EOF:
                pass
    return error.value


async def test_a_watch_starts_with_progress_then_gets_puts_deletes_and_expiries_in_order(svc, user):
    _, md = user
    prefix = unique("w/")
    stream = watch(svc, md, prefix=prefix)
    first = await next_message(stream)
    assert not first.events
    r1 = (await svc.kv2.PutPair(put("me", prefix + "a", {"n": 1}), metadata=md)).revision
    await svc.kv2.PutPair(put("me", unique("elsewhere/"), 1), metadata=md)  # not under the prefix
    r2 = (await svc.kv2.PutPair(put("me", prefix + "b", "x", ttl=1), metadata=md)).revision
    r3 = (await svc.kv2.DeletePair(v2.DeletePairRequest(namespace="me", key=prefix + "a"), metadata=md)).revision
    got = await events(stream, 4, timeout=5)
    assert got[:3] == [
        (r1, "PUT", prefix + "a", {"n": 1}),
        (r2, "PUT", prefix + "b", "x"),
        (r3, "DELETE", prefix + "a", None),
    ]
    revision, kind, key, value = got[3]
    assert (kind, key, value) == ("EXPIRE", prefix + "b", None) and revision > r3
    assert first.revision < r1
    stream.cancel()


def watch_lag() -> tuple[int, float]:
    """tkv_watch_lag_seconds in this process (the services run in it): count, sum."""
    samples = WATCH_LAG.snapshot()["samples"]
    return (sum(samples[0][1]), samples[0][2]) if samples else (0, 0.0)


async def test_each_live_message_counts_its_lag_from_the_write_to_the_send(svc, user):
    _, md = user
    prefix = unique("lag/")
    stream = watch(svc, md, prefix=prefix)
    await next_message(stream)  # the progress message: not a change, no lag
    count, total = watch_lag()
    written = time.time()
    await svc.kv2.PutPair(put("me", prefix + "a", 1), metadata=md)
    await events(stream, 1)
    received = time.time()

    new_count, new_total = watch_lag()
    assert new_count == count + 1
    assert 0 < new_total - total < received - written
    stream.cancel()


async def test_a_resumed_watch_gets_every_later_change_once_in_order(svc, user):
    _, md = user
    prefix = unique("r/")
    start = (await svc.kv2.PutPair(put("me", prefix + "0", 0), metadata=md)).revision
    written = []
    for i in range(1, 6):
        response = await svc.kv2.BatchPutPairs(
            v2.BatchPutPairsRequest(
                namespace="me", pairs=[v2.PairToPut(key=f"{prefix}{i}", value=put("me", "", i).value)]
            ),
            metadata=md,
        )
        written.append((response.revision, "PUT", f"{prefix}{i}", i))
    stream = watch(svc, md, prefix=prefix, start=start)
    assert (await next_message(stream)).revision == start
    assert await events(stream, 5) == written
    # Live changes follow the history without a gap or a repeat.
    live = (await svc.kv2.PutPair(put("me", prefix + "6", 6), metadata=md)).revision
    assert await events(stream, 1) == [(live, "PUT", prefix + "6", 6)]
    stream.cancel()


async def test_a_key_watch_and_a_keys_only_watch(svc, user):
    _, md = user
    key = unique("one/")
    by_key = watch(svc, md, key=key)
    keys_only = watch(svc, md, prefix=key, keys_only=True)
    await next_message(by_key), await next_message(keys_only)
    await svc.kv2.PutPair(put("me", key + "-longer", 1), metadata=md)  # shares the prefix, not the key
    revision = (await svc.kv2.PutPair(put("me", key, {"big": "x" * 100}), metadata=md)).revision
    assert await events(by_key, 1) == [(revision, "PUT", key, {"big": "x" * 100})]
    got = await events(keys_only, 2)
    assert [(kind, k, v) for _, kind, k, v in got] == [("PUT", key + "-longer", None), ("PUT", key, None)]
    by_key.cancel(), keys_only.cancel()


async def test_an_idle_watch_gets_progress_with_the_current_revision(stack):
    svc = await start_services(stack, TKV_KV_WATCH_PROGRESS_SECONDS="0.3")
    try:
        _, md = await sign_in(svc)
        stream = watch(svc, md, prefix=unique("idle/"))
        start = (await next_message(stream)).revision
        # A write elsewhere advances the revision; the idle watch's progress shows it.
        revision = (await svc.kv2.PutPair(put("me", unique("other/"), 1), metadata=md)).revision
        deadline = time.monotonic() + 3
        seen = start
        while seen < revision and time.monotonic() < deadline:
            message = await next_message(stream, 2)
            assert not message.events
            seen = message.revision
        assert seen >= revision
        stream.cancel()
    finally:
        await stop_services(svc)


async def test_watching_needs_access_like_listing(svc, user):
    _, md = user
    other, _ = await sign_in(svc)
    denied = await ended_with(watch(svc, md, namespace=other), 5)
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED
    bad = await ended_with(watch(svc, md, start=-1), 5)
    assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT and "start_revision" in bad.details()
    unauthenticated = await ended_with(svc.kv2.Watch(v2.WatchRequest(namespace="me")), 5)
    assert unauthenticated.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_logout_ends_the_watch_within_a_second(svc):
    _, token = await register_and_login(svc)
    stream = watch(svc, bearer(token), prefix="")
    await next_message(stream)
    started = time.monotonic()
    await svc.auth.Logout(auth_pb2.LogoutRequest(), metadata=bearer(token))
    error = await ended_with(stream, 1.0)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED and reason(error) == "TOKEN_REVOKED"
    assert time.monotonic() - started < 1.0


async def test_token_expiry_ends_the_watch_within_a_second(svc, stack):
    _, token = await register_and_login(svc)
    claims = jwt.decode(token, options={"verify_signature": False})
    expires_at = int(time.time()) + 2
    short = sign(stack.data_dir, **{**claims, "exp": expires_at, "iat": int(time.time())})
    stream = watch(svc, bearer(short), prefix="")
    await next_message(stream)
    error = await ended_with(stream, 4)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED and reason(error) == "TOKEN_EXPIRED"
    assert time.time() - expires_at < 1.0


async def test_a_revoked_grant_ends_the_grantees_watch_and_refuses_their_next_call(svc):
    owner, owner_md = await sign_in(svc)
    grantee, grantee_md = await sign_in(svc)
    await svc.kv2.CreateGrant(v2.CreateGrantRequest(namespace="me", grantee=grantee, role=v2.READER), metadata=owner_md)
    stream = watch(svc, grantee_md, namespace=owner, prefix="")
    await next_message(stream)
    revision = (await svc.kv2.PutPair(put("me", "shared-with-you", 1), metadata=owner_md)).revision
    assert await events(stream, 1) == [(revision, "PUT", "shared-with-you", 1)]
    started = time.monotonic()
    await svc.kv2.DeleteGrant(v2.DeleteGrantRequest(namespace="me", grantee=grantee), metadata=owner_md)
    error = await ended_with(stream, 1.0)
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED and reason(error) == "GRANT_REVOKED"
    assert time.monotonic() - started < 1.0
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await svc.kv2.GetPair(v2.GetPairRequest(namespace=owner, key="shared-with-you"), metadata=grantee_md)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


@pytest.fixture
async def user(svc):
    return await sign_in(svc)


@pytest.fixture(scope="module")
def small_stack(tmp_path_factory):
    """A Tarantool of its own, keeping a change log of 5 changes."""
    stack = Stack(tmp_path_factory.mktemp("watch-limits"), extra_env={"TKV_CHANGES_MAX_COUNT": "5"})
    process = tarantool(stack).start()
    yield stack
    process.stop()


class TestLimits:
    """A short change log, two watches per user, 256 KiB buffers."""

    @pytest.fixture
    async def small(self, small_stack):
        svc = await start_services(
            small_stack, TKV_KV_MAX_WATCHES_PER_USER="2", TKV_KV_WATCH_BUFFER_BYTES=str(256 * 1024)
        )
        yield svc
        await stop_services(svc)

    async def test_past_the_change_log_a_watch_is_out_of_range_with_the_oldest_revision(self, small):
        _, md = await sign_in(small)
        first = (await small.kv2.PutPair(put("me", "c0", 0), metadata=md)).revision
        for i in range(1, 20):
            await small.kv2.PutPair(put("me", f"c{i}", i), metadata=md)
        await asyncio.sleep(1.5)  # the housekeeping fiber trims every 0.5 s
        error = await ended_with(watch(small, md, start=first), 5)
        assert error.code() == grpc.StatusCode.OUT_OF_RANGE and reason(error) == "REVISION_COMPACTED"
        oldest = int(detail_of(error, error_details_pb2.ErrorInfo).metadata["oldest_revision"])
        assert first + 1 < oldest
        # From the oldest-but-one on, the watch works, and gets the kept changes.
        stream = watch(small, md, start=oldest - 1)
        assert (await next_message(stream)).revision == oldest - 1
        got = await events(stream, 1)
        assert got[0][0] == oldest
        stream.cancel()

    async def test_a_user_may_have_only_so_many_watches_open(self, small):
        _, md = await sign_in(small)
        a, b = watch(small, md, prefix="a"), watch(small, md, prefix="b")
        await next_message(a), await next_message(b)
        error = await ended_with(watch(small, md, prefix="c"), 5)
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and reason(error) == "TOO_MANY_WATCHES"
        _, other_md = await sign_in(small)  # another user has their own count
        other = watch(small, other_md, prefix="a")
        await next_message(other)
        a.cancel()
        await asyncio.sleep(0.3)
        c = watch(small, md, prefix="c")
        await next_message(c)
        for stream in (b, c, other):
            stream.cancel()

    async def test_a_slow_consumer_is_ended_while_others_keep_up(self, small):
        _, md = await sign_in(small)
        prefix = unique("slow/")
        slow, fast = watch(small, md, prefix=prefix), watch(small, md, prefix=prefix)
        await next_message(slow), await next_message(fast)
        received = []

        async def keep_reading():
            while len(received) < 60:
                message = await fast.read()
                received.extend(event.pair.key for event in message.events)

        reader = asyncio.create_task(keep_reading())
        big = "x" * 200_000
        for i in range(60):  # 12 MB: past the slow client's flow-control window and buffer
            await small.kv2.PutPair(put("me", f"{prefix}{i:02}", big), metadata=md)
        await asyncio.wait_for(reader, 20)
        assert received == [f"{prefix}{i:02}" for i in range(60)]
        error = await ended_with(slow, 10)
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and reason(error) == "WATCH_FELL_BEHIND"
        fast.cancel()

    async def test_the_client_raises_out_of_range_with_the_oldest_revision(self, small):
        from tkv_client import AsyncClient, OutOfRange

        _, md = await sign_in(small)
        token = md[0][1].removeprefix("Bearer ")
        first = (await small.kv2.PutPair(put("me", "o0", 0), metadata=md)).revision
        for i in range(1, 12):
            await small.kv2.PutPair(put("me", f"o{i}", i), metadata=md)
        await asyncio.sleep(1.5)
        kv, auth = f"127.0.0.1:{small.kv_service.port}", f"127.0.0.1:{small.auth_service.port}"
        async with AsyncClient(kv, auth_target=auth, token=token) as client:
            with pytest.raises(OutOfRange) as error:
                await anext(client.watch("", start_revision=first))
        assert error.value.reason == "REVISION_COMPACTED" and int(error.value.metadata["oldest_revision"]) > first + 1
