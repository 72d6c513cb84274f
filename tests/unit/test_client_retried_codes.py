"""Which failures the client tries again (tkv_client/aio.py RETRIED_CODES): UNAVAILABLE,
and CANCELLED that came from the server (gRPC's core sheds calls a busy process has not
taken up yet with CANCELLED, docs/operations.md) — only where repeating is safe."""

import asyncio
import time

import grpc
import jwt
import pytest

from tkv_client.aio import AsyncClient
from tkv_client.errors import TkvError

Code = grpc.StatusCode


def token() -> str:
    claims = {"sub": "alice", "exp": int(time.time()) + 3600}
    return jwt.encode(claims, "a test-only key of at least 32 bytes", algorithm="HS256")


class Failing:
    """A stub method that fails with `codes`, one per call, then answers."""

    def __init__(self, *codes: grpc.StatusCode):
        self.codes, self.calls = list(codes), 0

    async def __call__(self, request, metadata=None, timeout=None):
        self.calls += 1
        if self.codes:
            code = self.codes.pop(0)
            raise grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=code.name)
        return "answer"


@pytest.mark.parametrize("code", [Code.UNAVAILABLE, Code.CANCELLED])
def test_a_safe_call_is_tried_again_and_an_unsafe_one_is_not(code):
    async def check():
        async with AsyncClient("127.0.0.1:1", token=token(), retries=2, backoff=0) as client:
            safe = Failing(code, code)
            assert await client._call(safe, None, safe=True) == "answer"
            assert safe.calls == 3
            unsafe = Failing(code)
            with pytest.raises(TkvError) as raised:
                await client._call(unsafe, None, safe=False)
            assert (raised.value.code, unsafe.calls) == (code, 1)

    asyncio.run(check())


@pytest.mark.parametrize("code", [Code.INTERNAL, Code.DEADLINE_EXCEEDED, Code.ABORTED])
def test_other_failures_are_not_tried_again(code):
    async def check():
        async with AsyncClient("127.0.0.1:1", token=token(), retries=2, backoff=0) as client:
            method = Failing(code)
            with pytest.raises(TkvError):
                await client._call(method, None, safe=True)
            assert method.calls == 1

    asyncio.run(check())


def test_retries_stop_at_the_limit():
    async def check():
        async with AsyncClient("127.0.0.1:1", token=token(), retries=2, backoff=0) as client:
            method = Failing(Code.CANCELLED, Code.CANCELLED, Code.CANCELLED)
            with pytest.raises(TkvError):
                await client._call(method, None, safe=True)
            assert method.calls == 3

    asyncio.run(check())
