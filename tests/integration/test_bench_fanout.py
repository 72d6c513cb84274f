"""The fan-out benchmark's own checks (bench/fanout.py, run by `make bench`) on a small
load against real services: with the writer in a process of its own, as `make bench` runs
it, or in the watchers' process, and with the watchers in processes of their own, every
stored put reaches every watcher in revision order, and the figures the benchmark reports
are there. `make bench` takes half an hour; this
finds a broken benchmark in seconds."""

from __future__ import annotations

import multiprocessing

import grpc
import pytest

from bench import fanout
from tests.inprocess import register_and_login, start_services, stop_services
from tests.stack import free_port


def watchers_processes() -> list[multiprocessing.Process]:
    return [p for p in multiprocessing.active_children() if p.name.startswith(fanout.WATCHERS_PROCESS)]


@pytest.fixture
async def own_kv(stack):
    # Services of this test's own, on a known port: the benchmark dials an address.
    port = free_port()
    harness = await start_services(stack, TKV_KV_LISTEN=f"127.0.0.1:{port}", TKV_KV_MAX_WATCHES_PER_USER="8")
    yield harness, f"127.0.0.1:{port}"
    await stop_services(harness)


@pytest.mark.parametrize("writer_process", [True, False], ids=["writer-own-process", "writer-in-watchers-process"])
async def test_every_stored_put_reaches_every_watcher_in_order(own_kv, writer_process):
    harness, address = own_kv
    _, token = await register_and_login(harness)
    watchers, rate, seconds = 4, 200, 0.5

    result = await fanout.measure(address, token, watchers, rate, seconds, {}, writer_process)

    assert result["writer"] == ("a process of its own" if writer_process else "the watchers' process")
    assert result["put_errors"] == 0 and result["puts_stored"] == rate * seconds
    assert result["delivered"] == result["expected_deliveries"] == result["puts_stored"] * watchers
    assert result["watchers_complete_in_order"] == watchers
    for figure in ("put_answered_ms", "put_start_late_ms", "put_to_stored_ms", "stored_to_received_ms"):
        assert result[figure]["p50"] <= result[figure]["p99"], figure
    assert result["latency_p50_ms"] > 0
    assert (result["writer_cpu_cores"] is not None) == writer_process


async def test_watchers_in_processes_of_their_own_see_every_put_in_order(own_kv):
    harness, address = own_kv
    _, token = await register_and_login(harness)

    result = await fanout.measure(address, token, 5, 200, 0.5, {}, watcher_processes=2)
    assert not watchers_processes()  # each ended once it had sent its part

    assert result["put_errors"] == 0 and result["puts_stored"] == 100
    assert result["delivered"] == result["expected_deliveries"] == 500
    assert result["watchers_complete_in_order"] == 5
    assert result["stored_to_received_ms"]["p50"] > 0
    assert result["client_cpu_cores"] > result["writer_cpu_cores"]  # the watchers' processes count


async def test_a_refused_watch_fails_the_run_with_its_error(own_kv):
    # Nine watches of one user where the fixture allows eight: the ninth is refused, and the
    # run fails with that refusal, not with a wait for the watches that ends in a timeout.
    harness, address = own_kv
    _, token = await register_and_login(harness)

    with pytest.raises(grpc.aio.AioRpcError) as error:
        await fanout.measure(address, token, 9, 10, 0.2, {})
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_a_watchers_process_that_fails_ends_the_run_at_once(own_kv):
    harness, address = own_kv
    _, token = await register_and_login(harness)

    with pytest.raises(EOFError):  # its process ended: not the 60-s TimeoutError
        await fanout.measure(address, token, 9, 10, 0.2, {}, watcher_processes=2)
    # ...and the other was stopped, not left holding its watches.
    assert not watchers_processes()


async def test_the_writer_alone_answers_every_put(own_kv):
    harness, address = own_kv
    _, token = await register_and_login(harness)

    result = await fanout.measure(address, token, 0, 200, 0.5, {})

    assert result["put_errors"] == 0 and result["puts_stored"] == 100 and result["delivered"] == 0
    assert result["put_answered_ms"]["p99"] > 0


async def test_a_writer_process_that_fails_ends_the_run_at_once(own_kv):
    # A token no header can carry: the writer's first put raises in its process, which ends.
    _, address = own_kv

    with pytest.raises(EOFError):  # not the 60-s TimeoutError of a pipe end left open
        await fanout.measure(address, "bad\ntoken", 0, 10, 0.2, {})
