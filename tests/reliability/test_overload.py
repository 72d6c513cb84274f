"""Overload: a cap on calls in flight answers RESOURCE_EXHAUSTED (HTTP 429) instead of
queueing without bound; slow clients cannot pin gateway connections."""

import asyncio
import socket
import time

import grpc
import pytest

from tests.e2e.http_client import assert_shape, call
from tests.stack import Stack, start_all, stop_all
from tkv.auth.v1 import auth_pb2, auth_pb2_grpc

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def capped(tmp_path_factory):
    stack = Stack(
        tmp_path_factory.mktemp("overload"),
        extra_env={
            # Two calls in flight per process; argon2 slow enough that logins overlap.
            "TKV_MAX_CONCURRENT_RPCS": "2",
            "TKV_ARGON2_MEMORY_KIB": "65536",
            "TKV_ARGON2_TIME_COST": "3",
            "TKV_GATEWAY_HEADERS_TIMEOUT_SECONDS": "1",
        },
    )
    processes = start_all(stack)
    yield stack
    stop_all(processes)


async def test_calls_over_the_cap_are_refused_at_once(capped, report):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{capped.auth_port}") as channel:
        stub = auth_pb2_grpc.AuthServiceStub(channel)
        results = await asyncio.gather(
            *(
                stub.Login(auth_pb2.LoginRequest(login=f"User{i}", password="Secr3t!pass"), timeout=30)
                for i in range(16)
            ),
            return_exceptions=True,
        )
    codes = [r.code().name if isinstance(r, grpc.aio.AioRpcError) else "OK" for r in results]
    report({"codes": {code: codes.count(code) for code in set(codes)}})
    assert set(codes) <= {"UNAUTHENTICATED", "RESOURCE_EXHAUSTED"}
    assert codes.count("RESOURCE_EXHAUSTED") >= 8  # at most two run at a time
    assert codes.count("UNAUTHENTICATED") >= 2  # ...and those ran to completion


def test_overload_through_the_gateway_is_429_json(capped):
    from concurrent.futures import ThreadPoolExecutor

    address = f"127.0.0.1:{capped.gateway_port}"
    with ThreadPoolExecutor(12) as pool:
        replies = list(
            pool.map(lambda i: call(address, "POST", "/api/login/", {"login": f"U{i}", "password": "x"}), range(12))
        )
    statuses = [r.status for r in replies]
    assert set(statuses) <= {404, 429} and 429 in statuses, statuses
    for reply in replies:
        if reply.status == 429:
            assert_shape(reply, 429, {"message": str})


def test_a_client_that_never_finishes_its_headers_is_disconnected(capped):
    with socket.create_connection(("127.0.0.1", capped.gateway_port), timeout=10) as sock:
        sock.sendall(b"POST /api/read/ HTTP/1.1\r\nhost: x\r\n")  # ...and nothing more
        started = time.monotonic()
        data = sock.recv(4096)
        while data and b"\r\n\r\n" not in data:
            data += sock.recv(4096)
        waited = time.monotonic() - started
    assert data == b"" or data.startswith(b"HTTP/1.1 408"), data[:100]
    assert waited < 5  # TKV_GATEWAY_HEADERS_TIMEOUT_SECONDS=1 here (10 by default)
