"""Brute-force protection: failed logins counted per login name in Tarantool."""

import asyncio
import math
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from tests.e2e.http_client import call
from tests.inprocess import PASSWORD, register_and_login, start_services, stop_services, unique
from tests.stack import Stack, start_all, stop_all
from tests.status_details import reason
from tkv.auth.v1 import auth_pb2

THROTTLE = {"TKV_LOGIN_MAX_FAILURES": "3", "TKV_LOGIN_LOCK_SECONDS": "2", "TKV_LOGIN_MAX_LOCK_SECONDS": "60"}


@pytest.fixture
async def svc(tarantool_stack):
    harness = await start_services(tarantool_stack, **THROTTLE)
    yield harness
    await stop_services(harness)


def assert_retry_within(error, lock_seconds: int, locked_at: float) -> None:
    """The lock's remaining time, as the message and retry-after say it: whole seconds,
    rounded, at least 1, and no more than the lock and no less than what is left of it."""
    wait = int(re.fullmatch(r"too many failed logins for this login name; retry in (\d+) s", error.details())[1])
    left = lock_seconds - (time.monotonic() - locked_at)
    assert max(1, math.floor(left)) <= wait <= lock_seconds, (wait, left)
    assert ("retry-after", str(wait)) in tuple(error.trailing_metadata())


async def login(svc, name, password):
    try:
        await svc.auth.Login(auth_pb2.LoginRequest(login=name, password=password))
        return "OK", None
    except grpc.aio.AioRpcError as error:
        return error.code().name, error


async def test_the_nth_failure_locks_the_name_even_for_the_right_password(svc):
    name, _ = await register_and_login(svc)
    outcomes = [(await login(svc, name, "Wr0ng!pass"))[0] for _ in range(3)]
    locked_at = time.monotonic()
    assert outcomes == ["UNAUTHENTICATED"] * 3
    code, error = await login(svc, name, PASSWORD)
    assert code == "RESOURCE_EXHAUSTED"
    assert reason(error) == "LOGIN_THROTTLED"
    assert_retry_within(error, 2, locked_at)
    retry = [d for d in rpc_status.from_call(error).details if d.Is(error_details_pb2.RetryInfo.DESCRIPTOR)]
    assert len(retry) == 1


async def test_an_unknown_name_is_throttled_exactly_like_a_real_one(svc):
    real, _ = await register_and_login(svc)
    ghost = unique("Ghost")
    answers = {}
    for name in (real, ghost):
        for _ in range(3):
            await login(svc, name, "Wr0ng!pass")
        code, error = await login(svc, name, "Wr0ng!pass")
        answers[name] = (code, error.details(), reason(error))
    assert answers[real] == answers[ghost]
    assert answers[real][0] == "RESOURCE_EXHAUSTED"


async def test_the_lock_grows_with_each_further_failure(svc):
    name, _ = await register_and_login(svc)
    for _ in range(3):
        await login(svc, name, "Wr0ng!pass")
    await asyncio.sleep(2.1)  # the first lock (2 s) runs out: time itself is what is tested
    await login(svc, name, "Wr0ng!pass")  # the 4th failure doubles it
    locked_at = time.monotonic()
    _, error = await login(svc, name, PASSWORD)
    assert_retry_within(error, 4, locked_at)
    assert int(error.details().split()[-2]) >= 3  # doubled: more than the first lock's 2 s


async def test_success_resets_the_counter(svc):
    name, _ = await register_and_login(svc)
    for _ in range(2):
        await login(svc, name, "Wr0ng!pass")
    assert (await login(svc, name, PASSWORD))[0] == "OK"
    for _ in range(2):
        await login(svc, name, "Wr0ng!pass")
    assert (await login(svc, name, PASSWORD))[0] == "OK"


async def test_the_lock_is_case_insensitive_and_survives_a_service_restart(svc, tarantool_stack):
    name, _ = await register_and_login(svc)
    for variant in (name.lower(), name.upper(), name):
        await login(svc, variant, "Wr0ng!pass")
    restarted = await start_services(tarantool_stack, **THROTTLE)
    try:
        code, error = await login(restarted, name.swapcase(), PASSWORD)
        assert (code, reason(error)) == ("RESOURCE_EXHAUSTED", "LOGIN_THROTTLED")
    finally:
        await stop_services(restarted)


async def test_the_lock_expires(svc):
    name, _ = await register_and_login(svc)
    for _ in range(3):
        await login(svc, name, "Wr0ng!pass")
    assert (await login(svc, name, PASSWORD))[0] == "RESOURCE_EXHAUSTED"
    await asyncio.sleep(2.1)
    assert (await login(svc, name, PASSWORD))[0] == "OK"


async def test_guesses_sent_at_once_are_evaluated_at_most_up_to_the_threshold(svc):
    # THROTTLE allows 3 failures. All 64 arrive together: only the first 3 may reach the
    # password check, the rest are refused by the lock whatever their password.
    name, _ = await register_and_login(svc)
    outcomes = await asyncio.gather(*(login(svc, name, f"Wr0ng!{i}") for i in range(64)))
    codes = [code for code, _ in outcomes]
    assert codes.count("UNAUTHENTICATED") == 3, codes
    assert codes.count("RESOURCE_EXHAUSTED") == 61
    assert {reason(error) for code, error in outcomes if code == "RESOURCE_EXHAUSTED"} == {"LOGIN_THROTTLED"}


def test_guesses_sent_at_once_through_the_gateway_are_evaluated_at_most_up_to_the_threshold(tmp_path):
    stack = Stack(tmp_path / "gateway", extra_env={"TKV_LOGIN_MAX_FAILURES": "10"})
    processes = start_all(stack)
    try:
        gateway = f"127.0.0.1:{stack.gateway_port}"
        name = f"Target{uuid.uuid4().hex[:8]}"
        user = {"login": name, "password": PASSWORD, "name": "Anna", "surname": "Smith"}
        assert call(gateway, "POST", "/api/register/", user).status == 201
        guess = lambda i: call(gateway, "POST", "/api/login/", {"login": name, "password": f"Wr0ng!{i}"})  # noqa: E731
        with ThreadPoolExecutor(64) as pool:
            statuses = [reply.status for reply in pool.map(guess, range(64))]
        assert statuses.count(404) == 10, statuses  # evaluated: wrong login or password
        assert statuses.count(429) == 54, statuses  # refused by the lock, unevaluated
    finally:
        stop_all(processes)
