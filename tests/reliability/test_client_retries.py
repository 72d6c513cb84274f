"""tkv_client across a Tarantool restart (issue 14): a read is retried with backoff until
it succeeds; an unconditional write is tried once and fails, never repeated blindly; a
conditional write is retried."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid

import pytest

import tkv_client
from tests.stack import tarantool
from tkv_client import AsyncClient

PASSWORD = "Secr3t!pass"


async def test_reads_are_retried_across_a_restart_and_unconditional_writes_are_not(stack, report):
    login = "r" + uuid.uuid4().hex[:12]
    gateway = f"127.0.0.1:{stack.gateway_port}"
    # Retries must outlast a restart (1 s, then Tarantool's start-up and the gateway's next
    # health check) whatever the jitter draws: 8 retries with full jitter ran out in one
    # make test run ("no healthy upstream"). 30 capped at 0.5 s wait ~7 s on average.
    async with AsyncClient(gateway, login=login, password=PASSWORD, retries=30, backoff=0.2, max_backoff=0.5) as tkv:
        await tkv.register(login, PASSWORD, "Anna", "Smith")
        await tkv.put("k", "before")
        attempts = {"PutPair": 0, "GetPair": 0}
        once = tkv._once

        async def counted(method, request, metadata):
            name = type(request).__name__.removesuffix("Request")
            attempts[name] = attempts.get(name, 0) + 1
            return await once(method, request, metadata)

        tkv._once = counted
        stack.processes["tarantool"].stop(signal.SIGKILL)
        with pytest.raises(tkv_client.Unavailable):
            await tkv.put("k", "during")  # unconditional: one attempt, then the error
        assert attempts["PutPair"] == 1

        async def restart_later():
            await asyncio.sleep(1.0)
            stack.processes["tarantool"] = await asyncio.to_thread(tarantool(stack).start)

        restarting = asyncio.create_task(restart_later())
        started = time.monotonic()
        pair = await tkv.get("k")  # retried until Tarantool is back
        took = time.monotonic() - started
        await restarting
        assert pair.value == "before" and attempts["GetPair"] > 1 and took >= 1.0
        # A conditional write is safe to repeat, and is retried the same way: through a
        # second outage, counted from its first attempt.
        stack.processes["tarantool"].stop(signal.SIGKILL)
        attempts["PutPair"] = 0
        restarting = asyncio.create_task(restart_later())
        try:
            revision = await tkv.put("k", "after", if_version=pair.version)
        except tkv_client.Unavailable as error:
            pytest.fail(f"the conditional write was not retried through the outage: {error}")
        await restarting
        assert attempts["PutPair"] > 1 and revision > pair.version
        assert (await tkv.get("k")).value == "after"
        report({"get_attempts": attempts["GetPair"], "conditional_put_attempts": attempts["PutPair"],
                "get_took_s": round(took, 2)})  # fmt: skip
