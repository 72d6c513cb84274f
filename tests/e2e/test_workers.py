"""TKV_WORKERS: several processes serve one port; SIGTERM stops them all; one that dies is
restarted alone while the others keep serving."""

import asyncio
import json
import os
import signal
import subprocess

import grpc
import pytest

from tests.e2e.conftest import grpcurl
from tests.reliability.workload import Target, new_token
from tests.stack import Stack, kv_svc, start_all, stop_all, tarantool, wait_until
from tests.tokens_for_tests import bearer
from tkv.kv.v1 import kv_pb2, kv_pb2_grpc

pytestmark = pytest.mark.slow


def children_of(pid: int) -> list[int]:
    """The serving workers (multiprocessing's resource tracker is a child too)."""
    out = subprocess.run(["ps", "-ww", "-o", "pid=,args=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(line.split()[0]) for line in out.splitlines() if "spawn_main" in line]


@pytest.fixture
def two_workers(tmp_path):
    stack = Stack(tmp_path / "workers", extra_env={"TKV_WORKERS": "2"})
    db = tarantool(stack).start()
    kv = kv_svc(stack).start()
    yield stack, kv
    kv.stop(signal.SIGKILL)
    db.stop()


def read_pids(kv) -> list[int]:
    """The worker of every Read in kv_svc's access log, in order."""
    lines = [json.loads(line) for line in kv.log().splitlines() if line.startswith("{")]
    return [line["pid"] for line in lines if line.get("method") == "/tkv.kv.v1.KeyValueService/Read"]


def answering_pids(stack, kv, tries: int = 30) -> set[int]:
    """Which workers answered calls made over fresh connections (the kernel spreads them)."""
    for _ in range(tries):
        grpcurl(f"127.0.0.1:{stack.kv_port}", "tkv.kv.v1.KeyValueService/Read", data={"keys": ["k"]})
    # Access-log lines reach the file within 0.2 s (tkv_common/logs.py).
    wait_until(lambda: len(read_pids(kv)) >= tries, "access log written")
    return set(read_pids(kv))


def test_two_workers_share_the_port_and_stop_together(two_workers):
    stack, kv = two_workers
    wait_until(lambda: len(children_of(kv.popen.pid)) == 2, "two workers")
    workers = children_of(kv.popen.pid)
    wait_until(lambda: kv.log().count('"msg": "storage connected"') == 2, "both workers connected")
    assert answering_pids(stack, kv) == set(workers)
    assert kv.stop(signal.SIGTERM) == 0
    assert kv.log().count('"msg": "stopped"') == 2
    assert not any(os.path.exists(f"/proc/{pid}") for pid in workers)


def test_a_dead_worker_is_restarted_alone_while_the_others_keep_serving(two_workers):
    stack, kv = two_workers
    wait_until(lambda: len(children_of(kv.popen.pid)) == 2, "two workers")
    wait_until(lambda: kv.log().count('"msg": "storage connected"') == 2, "both workers connected")
    victim, survivor = children_of(kv.popen.pid)
    os.kill(victim, signal.SIGKILL)
    # The port keeps answering (the survivor), the group stays up, and a new worker replaces
    # the dead one.
    answered = [grpcurl(f"127.0.0.1:{stack.kv_port}", "grpc.health.v1.Health/Check").returncode == 0 for _ in range(5)]
    assert all(answered), answered
    wait_until(lambda: len(children_of(kv.popen.pid)) == 2 and victim not in children_of(kv.popen.pid), "a new worker")
    assert kv.popen.poll() is None
    assert survivor in children_of(kv.popen.pid)
    wait_until(lambda: kv.log().count('"msg": "storage connected"') == 3, "the new worker connected")
    restarts = [json.loads(line) for line in kv.log().splitlines() if '"msg": "worker exited; restarting it"' in line]
    # It had run for less than 10 s: restarted after the first pause of the backoff, 1 s.
    assert [(r["level"], r["exit_code"], r["restart_in_seconds"]) for r in restarts] == [
        ("warning", -signal.SIGKILL, 1.0)
    ]
    assert kv.stop(signal.SIGTERM) == 0


def test_envoy_spreads_calls_of_one_connection_over_every_worker(tmp_path):
    # One client connection: the shared port would hand all of it to one worker; Envoy
    # reaches each worker on its own socket and balances the calls.
    stack = Stack(tmp_path / "gateway", extra_env={"TKV_WORKERS": "2"})
    processes = start_all(stack)
    try:
        workers = children_of(processes["kv_svc"].popen.pid)
        token = asyncio.run(new_token(Target.of(stack)))

        async def reads():
            async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.gateway_port}") as channel:
                stub = kv_pb2_grpc.KeyValueServiceStub(channel)
                for _ in range(20):
                    with pytest.raises(grpc.aio.AioRpcError) as error:  # nothing stored: NOT_FOUND
                        await stub.Read(kv_pb2.ReadRequest(keys=["k"]), metadata=bearer(token))
                    assert error.value.code() == grpc.StatusCode.NOT_FOUND

        asyncio.run(reads())
        wait_until(lambda: len(read_pids(processes["kv_svc"])) >= 20, "access log written")
        pids = read_pids(processes["kv_svc"])
        assert set(pids) == set(workers)
        assert min(pids.count(pid) for pid in workers) >= 8  # round robin: 10 each
    finally:
        stop_all(processes)


def test_the_services_serve_on_asyncios_own_event_loop_too(tmp_path):
    # TKV_EVENT_LOOP=asyncio: the fallback to uvloop, documented in the README.
    stack = Stack(tmp_path / "asyncio", extra_env={"TKV_EVENT_LOOP": "asyncio"})
    processes = start_all(stack)
    try:

        async def flow():
            target = Target.of(stack)
            token = await new_token(target)
            async with target.grpc_channel(target.kv) as channel:
                stub = kv_pb2_grpc.KeyValueServiceStub(channel)
                await stub.Write(kv_pb2.WriteRequest(data={"loop": "asyncio"}), metadata=bearer(token))
                return await stub.Read(kv_pb2.ReadRequest(keys=["loop"]), metadata=bearer(token))

        assert asyncio.run(flow()).data["loop"] == "asyncio"
        for name in ("auth_svc", "kv_svc"):
            starting = [json.loads(line) for line in processes[name].log().splitlines() if '"msg": "starting"' in line]
            assert [line["event_loop"] for line in starting] == ["asyncio"], name
    finally:
        stop_all(processes)
