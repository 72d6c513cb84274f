"""Watch against real Tarantool (docs/api.md, "Watch"): events in revision order, resume without
gap or duplicate, progress, compaction (by count and by age), the per-user limit (over
every kv_svc process), slow consumers, and the ends a stream must come to (token expiry,
Logout, LogoutAll, ChangePassword, DeleteAccount, a lost grant) within 1 s."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import time

import grpc
import jwt
import pytest
from google.rpc import error_details_pb2

from kv_svc.watching import WATCH_LAG
from tests.inprocess import PASSWORD, register_and_login, start_services, stop_services, unique
from tests.integration.test_pairs_v2 import native, put, sign_in
from tests.stack import Stack, free_port, kv_svc, tarantool
from tests.status_details import detail_of, reason
from tests.tokens_for_tests import bearer, sign
from tkv.auth.v1 import auth_pb2
from tkv.kv.v2 import kv_pb2 as v2
from tkv.kv.v2 import kv_pb2_grpc as v2_grpc

EVENT = v2.Event.Type


def watch(svc, md, namespace="me", start=0, keys_only=False, **target):
    return svc.kv2.Watch(
        v2.WatchRequest(namespace=namespace, start_revision=start, keys_only=keys_only, **target), metadata=md
    )


async def next_message(stream, timeout: float = 5.0) -> v2.WatchResponse:
    return await asyncio.wait_for(stream.read(), timeout)


async def events(stream, count: int, timeout: float = 5.0) -> list[tuple[int, str, str, object]]:
    """The next `count` events as (revision, type, key, value or None), progress skipped;
    fails (an assertion, not a timeout) when fewer come within `timeout` seconds."""
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < count:
        try:
            message = await next_message(stream, deadline - time.monotonic())
        except TimeoutError:
            pytest.fail(f"{len(got)} of {count} events within {timeout} s: {got}")
        assert message != grpc.aio.EOF
        for event in message.events:
            assert event.pair.version <= message.revision
            value = native(event.pair) if event.pair.HasField("value") else None
            got.append((event.pair.version, EVENT.Name(event.type), event.pair.key, value))
    return got


async def ended_with(stream, timeout: float) -> grpc.aio.AioRpcError:
    """Reads until the stream fails; it must within `timeout` seconds (a stream still open
    then, or ended without an error, fails the test on an assertion)."""
    try:
        async with asyncio.timeout(timeout):
            while (await stream.read()) != grpc.aio.EOF:
                pass
    except grpc.aio.AioRpcError as error:
        return error
    except TimeoutError:
        stream.cancel()
        pytest.fail(f"the stream was still open after {timeout} s")
    pytest.fail("the stream ended without an error")


async def refusal_of(stream, timeout: float = 5.0) -> grpc.aio.AioRpcError:
    """The error a watch is refused with; fails the test if it opens instead."""
    try:
        message = await next_message(stream, timeout)
    except grpc.aio.AioRpcError as error:
        return error
    except TimeoutError:
        message = "nothing"
    stream.cancel()
    pytest.fail(f"the watch was not refused (its first message: {message})")


async def opened_once_allowed(open_watch, timeout: float = 5.0):
    """A watch opened by `open_watch()`, retried while it is refused with TOO_MANY_WATCHES
    (a closed or killed watch is given back to the count soon after, not at once); fails
    the test if it is still refused after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        stream = open_watch()
        try:
            await next_message(stream)
            return stream
        except grpc.aio.AioRpcError as error:
            if reason(error) != "TOO_MANY_WATCHES":
                raise
            if time.monotonic() > deadline:
                pytest.fail(f"a watch was still refused after {timeout} s: {error.details()}")
        await asyncio.sleep(0.05)


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


async def account_ends_its_watches(svc, end, expected_reason: str) -> None:
    """`end(token)` (LogoutAll, ChangePassword, DeleteAccount) ends, within 1 s, the
    watches of every token of the account, the one it was called with and another; a
    watch of another account goes on."""
    login, first = await register_and_login(svc)
    second = (await svc.auth.Login(auth_pb2.LoginRequest(login=login, password=PASSWORD))).token
    mine = [watch(svc, bearer(first), prefix=""), watch(svc, bearer(second), prefix="")]
    _, other_md = await sign_in(svc)
    bystander = watch(svc, other_md, prefix="")
    for stream in (*mine, bystander):
        await next_message(stream)
    await end(first)
    for stream in mine:
        error = await ended_with(stream, 1.0)
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED and reason(error) == expected_reason
    revision = (await svc.kv2.PutPair(put("me", "still-watched", 1), metadata=other_md)).revision
    assert await events(bystander, 1) == [(revision, "PUT", "still-watched", 1)]
    bystander.cancel()


async def test_logout_all_ends_every_watch_of_the_account_within_a_second(svc):
    async def logout_all(token):
        await svc.auth.LogoutAll(auth_pb2.LogoutAllRequest(), metadata=bearer(token))

    await account_ends_its_watches(svc, logout_all, "TOKEN_REVOKED")


async def test_changing_the_password_ends_every_watch_of_the_account_within_a_second(svc):
    async def change_password(token):
        request = auth_pb2.ChangePasswordRequest(old_password=PASSWORD, new_password="N3w-Secret!")
        await svc.auth.ChangePassword(request, metadata=bearer(token))

    await account_ends_its_watches(svc, change_password, "TOKEN_REVOKED")


async def test_deleting_the_account_ends_every_watch_of_the_account_within_a_second(svc):
    async def delete_account(token):
        await svc.auth.DeleteAccount(auth_pb2.DeleteAccountRequest(password=PASSWORD), metadata=bearer(token))

    await account_ends_its_watches(svc, delete_account, "TOKEN_INVALID")


async def test_the_watch_limit_counts_every_kv_svc_process_and_a_killed_one_gives_its_watches_back(svc, stack):
    """16 watches per user (the default), counted in Tarantool over every kv_svc process:
    10 in a kv_svc process of its own and 6 in this one leave none to open in either; once
    that process is SIGKILLed (it closes nothing), its 10 are given back, and the 6 here
    still count."""
    elsewhere = dataclasses.replace(stack, kv_port=free_port(), kv_metrics_port=free_port())
    process = kv_svc(elsewhere).start()
    try:
        _, md = await sign_in(svc)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{elsewhere.kv_port}") as channel:
            there = v2_grpc.KeyValueServiceStub(channel)

            def watch_there(prefix):
                return there.Watch(v2.WatchRequest(namespace="me", prefix=prefix), metadata=md)

            far = [watch_there(f"far{i}/") for i in range(10)]
            near = [watch(svc, md, prefix=f"near{i}/") for i in range(6)]
            for stream in far + near:
                await next_message(stream)
            for refused in (await refusal_of(watch(svc, md, prefix="x/")), await refusal_of(watch_there("x/"))):
                assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and reason(refused) == "TOO_MANY_WATCHES"
            process.stop(signal.SIGKILL)
        near.append(await opened_once_allowed(lambda: watch(svc, md, prefix="again0/")))
        for i in range(1, 10):
            stream = watch(svc, md, prefix=f"again{i}/")
            await next_message(stream)
            near.append(stream)
        refused = await refusal_of(watch(svc, md, prefix="x/"))
        assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and reason(refused) == "TOO_MANY_WATCHES"
        for stream in near:
            stream.cancel()
    finally:
        process.stop(signal.SIGKILL)


@pytest.fixture
async def user(svc):
    return await sign_in(svc)


# Changes the small stack's log keeps.
KEPT = 5


@pytest.fixture(scope="module")
def small_stack(tmp_path_factory):
    """A Tarantool of its own, keeping a change log of KEPT changes."""
    stack = Stack(tmp_path_factory.mktemp("watch-limits"), extra_env={"TKV_CHANGES_MAX_COUNT": str(KEPT)})
    process = tarantool(stack).start()
    yield stack
    process.stop()


async def oldest_kept(stack, reached, timeout: float = 10.0) -> int:
    """The oldest revision the change log holds, once `reached(oldest)` is true: the
    expiry fiber trims the log every 0.5 s. Fails the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        oldest = int(await asyncio.to_thread(stack.console, "require('tkv.watch').oldest_revision()"))
        if reached(oldest):
            return oldest
        if time.monotonic() > deadline:
            pytest.fail(f"the change log still starts at revision {oldest} after {timeout} s")
        await asyncio.sleep(0.1)


def compacted(error: grpc.aio.AioRpcError) -> int:
    """The oldest revision a REVISION_COMPACTED refusal names."""
    assert error.code() == grpc.StatusCode.OUT_OF_RANGE and reason(error) == "REVISION_COMPACTED", error.details()
    return int(detail_of(error, error_details_pb2.ErrorInfo).metadata["oldest_revision"])


@pytest.fixture(scope="module")
def aging_stack(tmp_path_factory):
    """A Tarantool of its own, keeping changes for 1 s (and up to the default count)."""
    stack = Stack(tmp_path_factory.mktemp("watch-aging"), extra_env={"TKV_CHANGES_MAX_AGE_SECONDS": "1"})
    process = tarantool(stack).start()
    yield stack
    process.stop()


async def test_changes_older_than_the_log_keeps_are_compacted(aging_stack):
    svc = await start_services(aging_stack)
    try:
        _, md = await sign_in(svc)
        first = (await svc.kv2.PutPair(put("me", "a0", 0), metadata=md)).revision
        last = (await svc.kv2.PutPair(put("me", "a1", 1), metadata=md)).revision
        # Past 1 s the age alone empties the log (far fewer changes than the count).
        await oldest_kept(aging_stack, lambda oldest: oldest > last)
        assert compacted(await refusal_of(watch(svc, md, start=first))) == last + 1
        # From the current revision on nothing is missing: the watch works.
        stream = watch(svc, md, start=last)
        assert (await next_message(stream)).revision == last
        revision = (await svc.kv2.PutPair(put("me", "a2", 2), metadata=md)).revision
        assert await events(stream, 1) == [(revision, "PUT", "a2", 2)]
        stream.cancel()
    finally:
        await stop_services(svc)


@pytest.fixture
async def small(small_stack):
    """kv_svc on the small stack: two watches per user, 256 KiB buffers."""
    svc = await start_services(small_stack, TKV_KV_MAX_WATCHES_PER_USER="2", TKV_KV_WATCH_BUFFER_BYTES=str(256 * 1024))
    yield svc
    await stop_services(svc)


async def test_past_the_change_log_a_watch_is_out_of_range_with_the_oldest_revision(small):
    _, md = await sign_in(small)
    first = (await small.kv2.PutPair(put("me", "c0", 0), metadata=md)).revision
    for i in range(1, 20):
        last = (await small.kv2.PutPair(put("me", f"c{i}", i), metadata=md)).revision
    await oldest_kept(small.stack, lambda oldest: oldest == last - KEPT + 1)
    oldest = compacted(await refusal_of(watch(small, md, start=first)))
    assert oldest == last - KEPT + 1
    # One change short (oldest - 1 is gone) is refused as well.
    assert compacted(await refusal_of(watch(small, md, start=oldest - 2))) == oldest
    # From the oldest-but-one on, the watch works, and gets the kept changes.
    stream = watch(small, md, start=oldest - 1)
    assert (await next_message(stream)).revision == oldest - 1
    got = await events(stream, 1)
    assert got[0][0] == oldest
    stream.cancel()


async def test_a_user_may_have_only_so_many_watches_open(small):
    _, md = await sign_in(small)
    a, b = watch(small, md, prefix="a"), watch(small, md, prefix="b")
    await next_message(a), await next_message(b)
    error = await refusal_of(watch(small, md, prefix="c"))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and reason(error) == "TOO_MANY_WATCHES"
    assert detail_of(error, error_details_pb2.ErrorInfo).metadata["limit"] == "2"
    _, other_md = await sign_in(small)  # another user has their own count
    other = watch(small, other_md, prefix="a")
    await next_message(other)
    a.cancel()  # gives its place back once kv_svc has closed it
    c = await opened_once_allowed(lambda: watch(small, md, prefix="c"))
    for stream in (b, c, other):
        stream.cancel()


async def test_a_slow_consumer_is_ended_while_others_keep_up(small):
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


async def test_the_client_raises_out_of_range_with_the_oldest_revision(small):
    from tkv_client import AsyncClient, OutOfRange

    _, md = await sign_in(small)
    token = md[0][1].removeprefix("Bearer ")
    first = (await small.kv2.PutPair(put("me", "o0", 0), metadata=md)).revision
    for i in range(1, 12):
        last = (await small.kv2.PutPair(put("me", f"o{i}", i), metadata=md)).revision
    await oldest_kept(small.stack, lambda oldest: oldest == last - KEPT + 1)
    kv, auth = f"127.0.0.1:{small.kv_service.port}", f"127.0.0.1:{small.auth_service.port}"
    async with AsyncClient(kv, auth_target=auth, token=token) as client:
        with pytest.raises(OutOfRange) as error:
            await anext(client.watch("", start_revision=first))
    assert error.value.reason == "REVISION_COMPACTED" and int(error.value.metadata["oldest_revision"]) > first + 1
