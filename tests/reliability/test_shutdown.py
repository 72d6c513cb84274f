"""SIGTERM under load: in-flight calls complete and no acknowledged write is lost."""

import asyncio
import signal
import uuid

import pytest

from tests.reliability.workload import UNKNOWN, Target, new_token, verify, writer

pytestmark = pytest.mark.slow


async def test_sigterm_drains_in_flight_calls_and_keeps_every_acknowledged_write(stack, report):
    target = Target.of(stack)
    token = await new_token(target)
    stop, attempts = asyncio.Event(), []
    prefix = f"term-{uuid.uuid4().hex[:8]}"
    tasks = [
        asyncio.create_task(writer(target, token, "grpc", f"{prefix}-{i}", stop, attempts, batch=20)) for i in range(6)
    ]
    await asyncio.sleep(1.0)
    kv = stack.processes["kv_svc"]
    exit_code = await asyncio.to_thread(kv.stop, signal.SIGTERM)
    stopped_at = len(attempts)
    await asyncio.to_thread(kv.start)
    await asyncio.sleep(1.0)
    stop.set()
    await asyncio.gather(*tasks)
    verdict = await verify(target, await new_token(target), attempts)
    interrupted = [a.detail for a in attempts[:stopped_at] if a.outcome == UNKNOWN]
    found = verdict.found_keys
    cancelled = [a for a in attempts[:stopped_at] if a.detail == "CANCELLED"]
    report(
        {
            **verdict.summary(),
            "exit_code": exit_code,
            "unknown_details": sorted(set(interrupted)),
            "cancelled": len(cancelled),
            "cancelled_but_applied": sum(a.key in found for a in cancelled),
        }
    )
    assert exit_code == 0
    assert '"msg": "stopped"' in kv.log()
    assert verdict.lost == [] and verdict.corrupted == [] and verdict.failed_but_found == []
    # Every call whose handler had started finished. Calls that reached the process as it
    # closed were refused (UNAVAILABLE) or cancelled before they started (CANCELLED): none
    # of those was applied, so a client may retry them safely.
    assert set(interrupted) <= {"UNAVAILABLE", "CANCELLED"}, interrupted
    assert sum(a.key in found for a in cancelled) == 0
