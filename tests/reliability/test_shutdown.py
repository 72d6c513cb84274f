"""SIGTERM under load: in-flight calls complete and no acknowledged write is lost."""

import asyncio
import signal
import uuid

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.reliability.workload import ACKED, Target, new_token, until_acknowledged, verify, writer
from tests.stack import eventually, within

pytestmark = pytest.mark.slow


async def test_sigterm_drains_in_flight_calls_and_keeps_every_acknowledged_write(stack, report):
    target = Target.of(stack)
    token = await new_token(target)
    stop, attempts = asyncio.Event(), []
    prefix = f"term-{uuid.uuid4().hex[:8]}"
    tasks = [
        asyncio.create_task(writer(target, token, "grpc", f"{prefix}-{i}", stop, attempts, batch=20)) for i in range(6)
    ]
    await until_acknowledged(attempts, 200)  # calls in flight in every writer, not a guess at when
    kv = stack.processes["kv_svc"]
    exit_code = await asyncio.to_thread(kv.stop, signal.SIGTERM)
    stopped_at = len(attempts)
    await asyncio.to_thread(kv.start)

    # The writers' channels reconnect after a backoff that grew while kv_svc was down: wait
    # for the first acknowledgement after the restart rather than guess how long that takes.
    async def acknowledged_after_restart() -> bool:
        return any(a.outcome == ACKED for a in attempts[stopped_at:])

    await eventually(acknowledged_after_restart, "a write acknowledged after the restart", timeout=30)
    stop.set()
    await asyncio.gather(*tasks)
    verdict = await verify(target, await new_token(target), attempts)
    found = verdict.found_keys
    not_ok = [a for a in attempts if a.outcome != ACKED]
    report(
        {
            **verdict.summary(),
            "exit_code": exit_code,
            "acked_before_stop": sum(a.outcome == ACKED for a in attempts[:stopped_at]),
            "acked_after_restart": sum(a.outcome == ACKED for a in attempts[stopped_at:]),
            "not_ok_details": sorted({a.detail for a in not_ok}),
            "not_ok": len(not_ok),
            "not_ok_but_applied": sum(a.key in found for a in not_ok),
        }
    )
    assert exit_code == 0
    assert '"msg": "stopped"' in kv.log()
    # The run proves something only if writes went through before the stop and after it.
    assert any(a.outcome == ACKED for a in attempts[:stopped_at])
    assert any(a.outcome == ACKED for a in attempts[stopped_at:])
    assert verdict.lost == [] and verdict.corrupted == [] and verdict.failed_but_found == []
    # Every call whose handler had started finished (and was acknowledged). Calls that
    # reached the process as it closed were refused (UNAVAILABLE) or cancelled before they
    # started (CANCELLED). (Later ones, while it was down or the channel reconnected, may
    # also have timed out.) None of the calls that failed, at any time, was applied, so a
    # client may retry them safely.
    around_stop = {a.detail for a in attempts[:stopped_at] if a.outcome != ACKED}
    assert around_stop <= {"UNAVAILABLE", "CANCELLED"}, around_stop
    assert [a.key for a in not_ok if a.key in found] == []


async def test_sigterm_reports_not_serving_before_the_process_stops(stack):
    # Load balancers and Envoy's health checks learn of the shutdown first (stage 1), while
    # calls in flight still finish (stage 2, TKV_SHUTDOWN_GRACE_SECONDS).
    kv = stack.processes["kv_svc"]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.kv_port}") as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest())
        updates = aiter(watch)
        assert (await within(anext(updates), 5, "the first update")).status == health_pb2.HealthCheckResponse.SERVING
        kv.send(signal.SIGTERM)
        update = await within(anext(updates), 5, "a health update after SIGTERM")
        assert update.status == health_pb2.HealthCheckResponse.NOT_SERVING
    assert await asyncio.to_thread(kv.popen.wait, 15) == 0
