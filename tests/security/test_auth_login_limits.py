"""The login limits at their default settings, on a clock the test moves instead of waiting:
the 30 s lock after 10 failures from one address, doubling with each further failure up to
15 min, and the per-login slow-down (docs/security.md, "Brute force").

auth_svc reads the time it hands to the stored functions (tarantool/tkv/logins.lua) in
auth_svc/storage.py and nowhere else, so replacing that module's `time` moves every lock."""

from __future__ import annotations

import re

import grpc
import pytest

from tests.inprocess import PASSWORD, register_and_login, start_services, stop_services
from tests.status_details import reason
from tkv.auth.v1 import auth_pb2

WRONG = "Wr0ng!pass"


@pytest.fixture
async def svc(tarantool_stack, clock):
    """auth_svc with the default limits: TKV_LOGIN_* unset."""
    harness = await start_services(tarantool_stack)
    yield harness
    await stop_services(harness)


async def login(svc, name: str, password: str, metadata=()) -> tuple[str, int | None]:
    """ "OK", "UNAUTHENTICATED" (evaluated and wrong), or "LOCKED" with the seconds to wait
    as the message and the retry-after trailer both say them."""
    try:
        await svc.auth.Login(auth_pb2.LoginRequest(login=name, password=password), metadata=metadata)
        return "OK", None
    except grpc.aio.AioRpcError as error:
        if error.code() == grpc.StatusCode.UNAUTHENTICATED:
            assert reason(error) == "INVALID_CREDENTIALS"
            return "UNAUTHENTICATED", None
        assert (error.code(), reason(error)) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "LOGIN_THROTTLED"), error
        wait = int(re.fullmatch(r"too many failed logins for this login name; retry in (\d+) s", error.details())[1])
        assert ("retry-after", str(wait)) in tuple(error.trailing_metadata())
        return "LOCKED", wait


async def test_ten_failures_lock_an_address_out_for_30_s_doubling_up_to_15_min(svc, clock):
    name, _ = await register_and_login(svc)
    assert [await login(svc, name, WRONG) for _ in range(10)] == [("UNAUTHENTICATED", None)] * 10
    # The 10th failure locks this address out of the login for 30 s, right password or not.
    assert await login(svc, name, PASSWORD) == ("LOCKED", 30)
    clock.advance(29)
    assert await login(svc, name, PASSWORD) == ("LOCKED", 1)
    clock.advance(1)
    # Each failure once a lock ran out doubles it: 60 s, 120 s, ... and 15 min at most.
    waits = []
    for _ in range(6):
        assert await login(svc, name, WRONG) == ("UNAUTHENTICATED", None)
        status, wait = await login(svc, name, PASSWORD)
        assert status == "LOCKED"
        waits.append(wait)
        clock.advance(wait - 1)
        assert await login(svc, name, PASSWORD) == ("LOCKED", 1)
        clock.advance(1)
    assert waits == [60, 120, 240, 480, 900, 900]
    # Locked, never for ever: the last lock ran out, so the right password works, and the
    # address starts again from no failures.
    assert await login(svc, name, PASSWORD) == ("OK", None)
    assert [await login(svc, name, WRONG) for _ in range(9)] == [("UNAUTHENTICATED", None)] * 9
    assert await login(svc, name, PASSWORD) == ("OK", None)


@pytest.fixture
async def behind_a_proxy(tarantool_stack, clock):
    """All default limits; this test's own address trusted as a proxy, so that the
    x-forwarded-for it sends names the client (as Envoy's does)."""
    harness = await start_services(tarantool_stack, TKV_TRUSTED_PROXIES="127.0.0.1/32")
    yield harness
    await stop_services(harness)


async def test_past_100_failures_in_an_hour_a_login_takes_one_attempt_a_second(behind_a_proxy, clock):
    svc = behind_a_proxy
    name, _ = await register_and_login(svc)

    def source(i: int) -> tuple[tuple[str, str]]:
        return (("x-forwarded-for", f"198.51.100.{i}"),)

    # 100 addresses, one wrong guess each: none is anywhere near its own lock (10).
    assert [await login(svc, name, WRONG, source(i)) for i in range(100)] == [("UNAUTHENTICATED", None)] * 100
    # The 100th failure was just now: the next attempt, from any address, waits a second.
    assert await login(svc, name, PASSWORD, source(200)) == ("LOCKED", 1)
    clock.advance(0.5)
    assert await login(svc, name, PASSWORD, source(201)) == ("LOCKED", 1)  # 0.5 s, said as "1 s"
    # Slowed, not locked: a second after the last attempt the right password works...
    clock.advance(0.5)
    assert await login(svc, name, PASSWORD, source(202)) == ("OK", None)
    # ...and the next attempt waits a second again.
    assert await login(svc, name, WRONG, source(203)) == ("LOCKED", 1)
    # A window lasts an hour from its first failure: then the count starts again.
    clock.advance(3600)
    assert [await login(svc, name, WRONG, source(204)) for _ in range(3)] == [("UNAUTHENTICATED", None)] * 3
    assert await login(svc, name, PASSWORD, source(205)) == ("OK", None)
