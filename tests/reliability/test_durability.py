"""Nothing acknowledged is ever lost: writers keep going while processes are SIGKILLed."""

import pytest

from tests.reliability.workload import crash_run

pytestmark = pytest.mark.slow


async def check_crash(stack, victims, report) -> None:
    verdict, figures = await crash_run(stack, victims)
    report(figures)
    assert verdict.lost == [], f"acknowledged but lost: {verdict.lost[:10]}"
    assert verdict.corrupted == [], f"values never written: {verdict.corrupted[:10]}"
    assert verdict.failed_but_found == [], f"reported failed yet stored: {verdict.failed_but_found[:10]}"
    assert figures["acked_before_kill"] > 0 and figures["acked_after_restart"] > 0, figures


async def test_tarantool_sigkill_loses_no_acknowledged_write(stack, report):
    await check_crash(stack, ["tarantool"], report)


async def test_services_sigkill_loses_no_acknowledged_write(stack, report):
    await check_crash(stack, ["auth_svc", "kv_svc"], report)


async def test_envoy_restart_loses_no_acknowledged_write(stack, report):
    await check_crash(stack, ["envoy"], report)
