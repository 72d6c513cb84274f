"""Nothing acknowledged is ever lost: writers keep going while processes are SIGKILLed."""

import asyncio
import signal
import time
import uuid

import pytest

from tests.reliability.workload import ACKED, Target, new_token, verify, writer
from tests.stack import Stack, auth_svc, envoy, kv_svc, tarantool

pytestmark = pytest.mark.slow


@pytest.fixture
def stack(tmp_path):
    stack = Stack(tmp_path / "durability")
    processes = {
        "tarantool": tarantool(stack),
        "auth_svc": auth_svc(stack),
        "kv_svc": kv_svc(stack),
        "envoy": envoy(stack),
    }
    for process in processes.values():
        process.start()
    stack.processes = processes
    yield stack
    for process in reversed(list(processes.values())):
        process.stop(signal.SIGKILL)


def target_of(stack) -> Target:
    return Target(f"127.0.0.1:{stack.auth_port}", f"127.0.0.1:{stack.kv_port}", "127.0.0.1", stack.gateway_port)


async def write_through_a_crash(stack, victims: list[str], report, writers_per_transport: int = 3) -> None:
    target = target_of(stack)
    token = await new_token(target)
    stop, attempts = asyncio.Event(), []
    prefix = f"dur-{uuid.uuid4().hex[:8]}"
    tasks = [
        asyncio.create_task(writer(target, token, via, f"{prefix}-{via}{i}", stop, attempts))
        for via in ("grpc", "http")
        for i in range(writers_per_transport)
    ]
    await asyncio.sleep(1.5)
    killed_at = time.monotonic()
    for name in victims:
        stack.processes[name].stop(signal.SIGKILL)
    await asyncio.sleep(1.0)
    for name in victims:
        await asyncio.to_thread(stack.processes[name].start)
    restarted_at = time.monotonic()
    await asyncio.sleep(2.5)
    stop.set()
    await asyncio.gather(*tasks)

    # A fresh account reads back: the check must not depend on what the crash did to the writer's.
    verdict = await verify(target, await new_token(target), attempts)
    first_ack_after = min((a.at for a in attempts if a.outcome == ACKED and a.at > restarted_at), default=None)
    figures = {
        **verdict.summary(),
        "killed": victims,
        "acked_before_kill": sum(a.outcome == ACKED and a.at < killed_at for a in attempts),
        "acked_after_restart": sum(a.outcome == ACKED and a.at > restarted_at for a in attempts),
        "first_ack_after_restart_s": round(first_ack_after - restarted_at, 3) if first_ack_after else None,
    }
    report(figures)
    assert verdict.lost == [], f"acknowledged but lost: {verdict.lost[:10]}"
    assert verdict.corrupted == [], f"values never written: {verdict.corrupted[:10]}"
    assert verdict.failed_but_found == [], f"reported failed yet stored: {verdict.failed_but_found[:10]}"
    assert figures["acked_before_kill"] > 0 and figures["acked_after_restart"] > 0, figures


async def test_tarantool_sigkill_loses_no_acknowledged_write(stack, report):
    await write_through_a_crash(stack, ["tarantool"], report)


async def test_services_sigkill_loses_no_acknowledged_write(stack, report):
    await write_through_a_crash(stack, ["auth_svc", "kv_svc"], report)


async def test_envoy_restart_loses_no_acknowledged_write(stack, report):
    await write_through_a_crash(stack, ["envoy"], report)
