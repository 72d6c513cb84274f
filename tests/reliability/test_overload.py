"""Overload: a cap on calls in flight answers RESOURCE_EXHAUSTED (HTTP 429) instead of
queueing without bound; slow clients cannot pin gateway connections."""

import asyncio
import socket
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from tests.e2e.http_client import assert_shape, call
from tests.stack import Stack, envoy_upstreams_healthy, eventually, start_all, stop_all, wait_until
from tests.tokens_for_tests import bearer
from tkv.auth.v1 import auth_pb2, auth_pb2_grpc
from tkv.kv.v2 import kv_pb2 as v2
from tkv.kv.v2 import kv_pb2_grpc as v2_grpc

pytestmark = pytest.mark.slow

# grpc's own refusal past `maximum_concurrent_rpcs` (tkv_common/server.py): before any handler
# or interceptor runs, so with no ErrorInfo. Any other RESOURCE_EXHAUSTED (HASHING_BUSY,
# LOGIN_THROTTLED, a quota) is another protection's, and carries its reason.
OVER_THE_CAP = (grpc.StatusCode.RESOURCE_EXHAUSTED, "Concurrent RPC limit exceeded!")
WRONG_LOGIN = (grpc.StatusCode.UNAUTHENTICATED, "You have entered an incorrect login or password")


@pytest.fixture(scope="module")
def capped(tmp_path_factory):
    stack = Stack(
        tmp_path_factory.mktemp("overload"),
        extra_env={
            # Two calls in flight per process; argon2 slow enough that logins overlap.
            "TKV_MAX_CONCURRENT_RPCS": "2",
            "TKV_ARGON2_MEMORY_KIB": "65536",
            "TKV_ARGON2_TIME_COST": "3",
            # Two hashes at a time, as the cap allows: without the cap, the logins below
            # would be refused too, but with HASHING_BUSY. The tests tell the two apart.
            "TKV_ARGON2_MAX_PENDING": "2",
            "TKV_GATEWAY_HEADERS_TIMEOUT_SECONDS": "1",
        },
    )
    processes = start_all(stack)
    yield stack
    stop_all(processes)


def outcome(result) -> tuple:
    """(code, details, has grpc-status-details-bin) of a call's result or error."""
    if not isinstance(result, grpc.aio.AioRpcError):
        return (grpc.StatusCode.OK, "", False)
    has_details = any(key == "grpc-status-details-bin" for key, _ in result.trailing_metadata() or ())
    return (result.code(), result.details(), has_details)


async def test_logins_over_the_cap_are_refused_by_the_cap(capped, report):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{capped.auth_port}") as channel:
        stub = auth_pb2_grpc.AuthServiceStub(channel)
        results = await asyncio.gather(
            *(
                stub.Login(auth_pb2.LoginRequest(login=f"User{i}", password="Secr3t!pass"), timeout=30)
                for i in range(16)
            ),
            return_exceptions=True,
        )
    outcomes = [outcome(r) for r in results]
    report({"outcomes": {str(o): outcomes.count(o) for o in set(outcomes)}})
    # Refused by the cap, not by another protection: grpc's words and no ErrorInfo.
    assert set(outcomes) <= {(*OVER_THE_CAP, False), (*WRONG_LOGIN, True)}, outcomes
    assert outcomes.count((*OVER_THE_CAP, False)) >= 8  # at most two run at a time
    assert outcomes.count((*WRONG_LOGIN, True)) >= 2  # ...and those ran to completion


async def open_watch(stub, md, prefix: str):
    """A watch the server admitted: its opening message has arrived. Retried while the cap
    refuses it (Envoy's health checks take a slot for a moment too)."""
    for _ in range(100):
        watch = stub.Watch(v2.WatchRequest(namespace="me", prefix=prefix), metadata=md)
        try:
            opening = await watch.read()
        except grpc.aio.AioRpcError as error:
            assert (error.code(), error.details()) == OVER_THE_CAP
            await asyncio.sleep(0.05)
            continue
        assert list(opening.events) == []
        return watch
    pytest.fail("the cap never admitted a watch")


async def test_calls_over_the_cap_are_refused_while_the_admitted_ones_run(capped):
    login = f"Cap{uuid.uuid4().hex[:8]}"
    async with grpc.aio.insecure_channel(f"127.0.0.1:{capped.auth_port}") as channel:
        auth = auth_pb2_grpc.AuthServiceStub(channel)
        user = auth_pb2.RegisterRequest(login=login, password="Secr3t!pass", name="Anna", surname="Smith")
        await auth.Register(user, timeout=30)
        token = (await auth.Login(auth_pb2.LoginRequest(login=login, password="Secr3t!pass"), timeout=30)).token
    md = bearer(token)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{capped.kv_port}") as channel:
        kv = v2_grpc.KeyValueServiceStub(channel)
        # Two streams the server admitted and keeps running: both slots of the cap.
        watches = [await open_watch(kv, md, "w"), await open_watch(kv, md, "w")]
        read = v2.BatchGetPairsRequest(namespace="me", keys=["k"])
        results = await asyncio.gather(
            *(kv.BatchGetPairs(read, metadata=md, timeout=10) for _ in range(8)), return_exceptions=True
        )
        # Every further call is refused by the cap, with nothing queued: each has its answer...
        assert [outcome(r) for r in results] == [(*OVER_THE_CAP, False)] * 8
        # ...while the calls it admitted still run: refused during them, not after them.
        assert [w.done() for w in watches] == [False, False]
        for watch in watches:
            watch.cancel()

        # A slot is free again once they end (grpc frees it when the stream's task ends).
        async def admitted():
            try:
                found = await kv.BatchGetPairs(read, metadata=md, timeout=10)
            except grpc.aio.AioRpcError as error:
                assert (error.code(), error.details()) == OVER_THE_CAP
                return False
            return list(found.missing_keys) == ["k"]

        await eventually(admitted, "a call admitted after the watches ended")


def test_overload_through_the_gateway_is_429_json(capped):
    # The tests above may have had a health check refused by the cap: wait for Envoy to
    # route to both services again.
    wait_until(lambda: envoy_upstreams_healthy(capped.admin_port), "both services healthy in Envoy")
    address = f"127.0.0.1:{capped.gateway_port}"
    with ThreadPoolExecutor(12) as pool:
        replies = list(
            pool.map(lambda i: call(address, "POST", "/api/login/", {"login": f"U{i}", "password": "x"}), range(12))
        )
    statuses = [r.status for r in replies]
    assert set(statuses) <= {404, 429} and 429 in statuses, statuses
    for reply in replies:
        if reply.status == 429:
            # The cap's refusal in the API's shape: not the edge limit's or HASHING_BUSY's words.
            assert assert_shape(reply, 429, {"message": str}) == {"message": OVER_THE_CAP[1]}


def gateway_counter(stack: Stack, name: str) -> int:
    """A counter of the gateway's HTTP connection manager (Envoy admin /stats)."""
    url = f"http://127.0.0.1:{stack.admin_port}/stats?filter=^http\\.gateway\\.{name}$"
    line = urllib.request.urlopen(url, timeout=5).read().decode().strip()
    assert line.startswith(f"http.gateway.{name}: "), line
    return int(line.rsplit(" ", 1)[1])


def test_a_client_that_never_finishes_its_headers_is_disconnected(capped):
    timeouts = gateway_counter(capped, "downstream_rq_header_timeout")
    with socket.create_connection(("127.0.0.1", capped.gateway_port), timeout=20) as sock:
        sock.sendall(b"POST /api/read/ HTTP/1.1\r\nhost: x\r\n")  # ...and nothing more
        data = b""
        try:
            while chunk := sock.recv(4096):
                data += chunk
        except TimeoutError:
            pytest.fail(f"the gateway still holds the connection after 20 s (got {data[:100]!r})")
    # Closed, with at most a 408...
    assert data == b"" or data.startswith(b"HTTP/1.1 408"), data[:100]
    # ...because its header timer fired (TKV_GATEWAY_HEADERS_TIMEOUT_SECONDS=1 here): Envoy
    # counts that only for a stream still open when it fires, so the connection stayed open
    # until then. A connection dropped at once, or closed for another reason, leaves it.
    assert gateway_counter(capped, "downstream_rq_header_timeout") == timeouts + 1
