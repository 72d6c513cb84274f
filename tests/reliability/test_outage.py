"""Tarantool unreachable: fail fast, report NOT_SERVING, stop routing, recover by itself; and a
service slow to answer one health check stays in rotation."""

import asyncio
import signal
import time
import urllib.request

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.e2e.http_client import assert_shape, call
from tests.reliability.workload import Target, new_token
from tests.stack import eventually, wait_until
from tkv.kv.v1 import kv_pb2, kv_pb2_grpc
from tkv_common.settings import Env

pytestmark = pytest.mark.slow

# kv_svc's timeout of every Tarantool call, as the stack runs it (the catalogue's default).
CALL_TIMEOUT_S = Env({}).float("TKV_TARANTOOL_CALL_TIMEOUT")
# How long the test waits for service to come back: a bound on the wait, far above it.
RECOVERY_WAIT_S = 30


def envoy_health(process_stack) -> set[str]:
    url = f"http://127.0.0.1:{process_stack.admin_port}/clusters"
    clusters = urllib.request.urlopen(url, timeout=2).read().decode()
    return {line.rsplit("::", 1)[1] for line in clusters.splitlines() if "::health_flags::" in line}


async def read_code(channel, token, deadline_s: float = 10) -> grpc.StatusCode:
    try:
        await kv_pb2_grpc.KeyValueServiceStub(channel).Read(
            kv_pb2.ReadRequest(keys=["probe"]), metadata=[("authorization", f"Bearer {token}")], timeout=deadline_s
        )
        return grpc.StatusCode.OK
    except grpc.aio.AioRpcError as error:
        return error.code()


async def test_outage_fails_fast_and_recovery_needs_no_restart(stack, report):
    target = Target.of(stack)
    token = await new_token(target)
    async with target.grpc_channel(target.kv) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        stack.processes["tarantool"].stop(signal.SIGKILL)

        # Fails fast: a refused connection is known at once, without waiting for kv_svc's
        # own storage timeout. A call that waited for it would end in DEADLINE_EXCEEDED at
        # this deadline, half of it (the outage answered in 3-4 ms in our runs).
        started = time.monotonic()
        assert await read_code(channel, token, deadline_s=CALL_TIMEOUT_S / 2) == grpc.StatusCode.UNAVAILABLE
        fail_ms = round((time.monotonic() - started) * 1000, 1)
        reply = call(f"127.0.0.1:{stack.gateway_port}", "POST", "/api/read/", {"keys": ["probe"]}, token=token)
        assert_shape(reply, 503, {"message": str})

        # The service says so (its storage watcher looks every 0.25 s), and Envoy stops
        # routing to it.
        async def not_serving() -> bool:
            status = (await health.Check(health_pb2.HealthCheckRequest())).status
            return status == health_pb2.HealthCheckResponse.NOT_SERVING

        await eventually(not_serving, "NOT_SERVING", timeout=2)
        deadline = time.monotonic() + 10
        while "healthy" in envoy_health(stack) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert "healthy" not in envoy_health(stack)
        reply = call(f"127.0.0.1:{stack.gateway_port}", "POST", "/api/read/", {"keys": ["probe"]}, token=token)
        assert assert_shape(reply, 503, {"message": str}) == {"message": "no healthy upstream"}

        await asyncio.to_thread(stack.processes["tarantool"].start)
        # Served again without a restart. How soon is a figure, reported, not asserted (the
        # issue asked for 2 s: 0.1-0.2 s through gRPC and 0.9 s through Envoy in our runs).
        back = time.monotonic()
        while await read_code(channel, token) != grpc.StatusCode.NOT_FOUND:  # NOT_FOUND: served again
            assert time.monotonic() - back < RECOVERY_WAIT_S, f"not served again within {RECOVERY_WAIT_S} s"
            await asyncio.sleep(0.02)
        recovery_s = round(time.monotonic() - back, 3)
        while envoy_health(stack) != {"healthy"}:
            assert time.monotonic() - back < RECOVERY_WAIT_S, f"Envoy did not route again within {RECOVERY_WAIT_S} s"
            await asyncio.sleep(0.05)
        gateway_recovery_s = round(time.monotonic() - back, 3)
    report({"unavailable_after_ms": fail_ms, "grpc_recovery_s": recovery_s, "gateway_recovery_s": gateway_recovery_s})


def envoy_counter(process_stack, name: str) -> int:
    url = f"http://127.0.0.1:{process_stack.admin_port}/stats?filter=^{name}$"
    line = urllib.request.urlopen(url, timeout=2).read().decode().strip()
    return int(line.rsplit(": ", 1)[1])


def test_one_health_check_that_times_out_keeps_the_service_in_rotation(stack, report):
    # A service too busy to answer one check in time (a starved host) is not taken out of
    # rotation for it: with one instance that would be 503 "no healthy upstream" for every
    # call (envoy.template.yaml, unhealthy_threshold). kv_svc is stopped until Envoy has
    # counted one check that timed out, then looked at before it runs again.
    failures = "cluster.kv_svc.health_check.failure"
    before, successes = envoy_counter(stack, failures), envoy_counter(stack, "cluster.kv_svc.health_check.success")
    stack.processes["kv_svc"].send(signal.SIGSTOP)
    try:
        wait_until(lambda: envoy_counter(stack, failures) > before, "a health check that timed out", timeout=30)
        flags_while_stopped = envoy_health(stack)
    finally:
        stack.processes["kv_svc"].send(signal.SIGCONT)
    counted = envoy_counter(stack, failures) - before
    wait_until(
        lambda: envoy_counter(stack, "cluster.kv_svc.health_check.success") > successes, "a check that passes", 30
    )
    report({"failed_checks": counted, "flags_while_stopped": sorted(flags_while_stopped)})
    assert counted == 1, counted
    assert flags_while_stopped == {"healthy"}
    token = asyncio.run(new_token(Target.of(stack)))
    reply = call(f"127.0.0.1:{stack.gateway_port}", "POST", "/api/read/", {"keys": ["probe"]}, token=token)
    assert assert_shape(reply, 400, {"message": str}) == {"message": "These keys don't exist: probe"}
