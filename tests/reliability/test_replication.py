"""A replica of the master, failover by one command (scripts/failover.py) with services that
follow the writable node by themselves (docs/operations.md), and the durability check run
through it: asynchronous replication may lose the last acknowledged writes (reported),
synchronous replication (quorum 2, experimental on Tarantool 2.6) must lose none, and a
switchover with the master alive loses none in either mode."""

import asyncio
import itertools
import json
import shutil
import signal
import subprocess
import sys
import time
import uuid

import grpc
import pytest

from tests.reliability.workload import ACKED, Target, new_token, until_acknowledged, until_answered, verify, writer
from tests.stack import ROOT, Stack, auth_svc, kv_svc, stop_all, tarantool, wait_until

pytestmark = pytest.mark.slow


def replica_status(replica: Stack) -> str:
    # The replica's link to the master (id 1): 'follow' once it streams the WAL.
    return replica.console(
        "(box.info.replication[1] and box.info.replication[1].upstream "
        "and box.info.replication[1].upstream.status) or 'none'"
    )


def start_cluster(tmp_path, mode):
    sync = {"TKV_TARANTOOL_SYNC_QUORUM": "2"} if mode == "sync" else {}
    master = Stack(tmp_path / "master", extra_env={**sync, "TKV_TARANTOOL_SERVE_REPLICAS": "true"})
    replica = Stack(
        tmp_path / "replica",
        extra_env={
            **sync,
            "TKV_TARANTOOL_REPLICATION": f"127.0.0.1:{master.tarantool_port}",
            "TKV_TARANTOOL_READ_ONLY": "true",
        },
    )
    shutil.copytree(master.data_dir / "secrets", replica.data_dir / "secrets", dirs_exist_ok=True)
    processes = {"master": tarantool(master).start(), "replica": tarantool(replica).start()}
    wait_until(lambda: replica_status(replica) == "follow", "replication")
    # The services know both nodes, and send every call to the writable one.
    master.extra_env["TKV_TARANTOOL_ADDR"] = f"127.0.0.1:{master.tarantool_port},127.0.0.1:{replica.tarantool_port}"
    processes["auth_svc"], processes["kv_svc"] = auth_svc(master).start(), kv_svc(master).start()
    return master, replica, processes


@pytest.fixture(params=["async", "sync"])
def cluster(request, tmp_path):
    master, replica, processes = start_cluster(tmp_path, request.param)
    yield request.param, master, replica, processes
    stop_all(processes, signal.SIGKILL)


# The services' TKV_TARANTOOL_CALL_TIMEOUT (its default) and the quorum's timeout
# (TKV_TARANTOOL_SYNC_TIMEOUT_SECONDS, its default).
CALL_TIMEOUT, SYNC_TIMEOUT = 2.0, 5.0


async def test_sync_mode_acknowledges_a_write_only_once_the_replica_has_it(tmp_path, report):
    master, _, processes = start_cluster(tmp_path, "sync")
    try:
        target = Target(f"127.0.0.1:{master.auth_port}", f"127.0.0.1:{master.kv_port}", "127.0.0.1", 0)
        token = await new_token(target)
        processes["replica"].stop(signal.SIGKILL)
        stop, attempts = asyncio.Event(), []
        task = asyncio.create_task(writer(target, token, "grpc", f"alone-{uuid.uuid4().hex[:8]}", stop, attempts))
        await until_answered(attempts, 2, timeout=6 * CALL_TIMEOUT)
        stop.set()
        await task
        # Past the quorum's timeout every waiting transaction has been rolled back. There is
        # nothing to ask (2.6.0 has no box.info.synchro): the master's own timeout decides.
        await asyncio.sleep(max(a.at for a in attempts) + SYNC_TIMEOUT + 0.5 - time.monotonic())
        verdict = await verify(target, token, attempts)  # reads need no quorum; a new account would
        report({**verdict.summary(), "took_s": sorted({round(a.took, 1) for a in attempts})})
        assert len(attempts) >= 2
        # Each write waited for the replica's acknowledgement, then answered UNAVAILABLE
        # within the service's call timeout: either the call timed out, or the master gave up
        # on the quorum and rolled it back (never INTERNAL)...
        assert {a.detail for a in attempts} == {"UNAVAILABLE"}
        assert any(a.took >= CALL_TIMEOUT - 0.1 for a in attempts)  # it did wait
        assert all(a.took < CALL_TIMEOUT + 1.5 for a in attempts), [a.took for a in attempts]
        # ... and none landed: without the quorum the master rolled every one of them back.
        assert verdict.acknowledged == 0 and verdict.found == 0
    finally:
        stop_all(processes, signal.SIGKILL)


def failover_command(promote: Stack, demote: Stack) -> dict:
    """The documented command (scripts/failover.py), as an operator runs it."""
    result = subprocess.run(
        [sys.executable, "scripts/failover.py", "--promote", str(promote.console_socket), "--demote",
         str(demote.console_socket)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def write_gap(attempts, since: float) -> float:
    """The longest time, from `since` (the fault) on, in which no write was acknowledged:
    how long writes failed (six writers keep at least one write in flight)."""
    acked = sorted(a.at + a.took for a in attempts if a.outcome == ACKED)
    last_before = max((t for t in acked if t <= since), default=since)
    after = [t for t in acked if t > since]
    moments = [last_before, *after]
    return round(max(b - a for a, b in itertools.pairwise(moments)), 3) if after else float("inf")


async def write_through(target, token, fault, writes_before=100, writes_after=100):
    """Six writers; `fault()` once `writes_before` writes are acknowledged, then until
    `writes_after` more are (or 15 s pass: the assertions judge what that means); the
    attempts and the moment of the fault."""
    stop, attempts = asyncio.Event(), []
    prefix = f"repl-{uuid.uuid4().hex[:8]}"
    tasks = [asyncio.create_task(writer(target, token, "grpc", f"{prefix}-{i}", stop, attempts)) for i in range(6)]
    await until_acknowledged(attempts, writes_before)
    at = time.monotonic()
    outcome = await asyncio.to_thread(fault)
    await until_acknowledged(attempts, writes_after, since=time.monotonic(), timeout=15)
    stop.set()
    await asyncio.gather(*tasks)
    return attempts, at, outcome


async def token_once_serving(target, timeout: float = 15.0) -> str:
    """A new account's token once auth_svc has found the promoted node too: it probes on its
    own schedule, and kv_svc may have moved first."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await new_token(target)
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                raise AssertionError(f"auth_svc does not serve after the failover: {error.details()}") from None
            await asyncio.sleep(0.1)


async def test_failover_to_the_replica(cluster, report):
    """The master dies; one command promotes the replica; the services, never restarted,
    find it by themselves."""
    mode, master, replica, processes = cluster
    target = Target(f"127.0.0.1:{master.auth_port}", f"127.0.0.1:{master.kv_port}", "127.0.0.1", master.gateway_port)
    token = await new_token(target)
    assert int(replica.console("box.space.users:len()")) == 1  # replicated already

    def kill_and_promote():
        processes["master"].stop(signal.SIGKILL)
        return failover_command(replica, master)

    attempts, killed_at, command = await write_through(target, token, kill_and_promote)
    assert replica.console("box.info.ro") == "false"
    acked_after_failover = sum(a.outcome == ACKED and a.at > killed_at + command["took_s"] for a in attempts)
    assert acked_after_failover > 0, "the services did not move to the promoted replica"  # no restart
    verdict = await verify(target, await token_once_serving(target), attempts)
    figures = {
        "mode": mode,
        **verdict.summary(),
        "failover_command": command,
        "writes_failed_for_s": write_gap(attempts, killed_at),
        "acked_after_failover": acked_after_failover,
    }
    report(figures)
    assert command["demoted"] == "unreachable: left alone" and command["synchronous"] == (mode == "sync")
    assert verdict.corrupted == [] and verdict.failed_but_found == []
    if mode == "sync":
        assert verdict.lost == [], f"synchronous replication lost acknowledged writes: {verdict.lost[:10]}"


# Writes that reach the old master once it is read-only, before the services have moved:
# refused (UNAVAILABLE, retried by the client), and logged by Tarantool.
@pytest.mark.log_errors_expected(r"ER_READONLY")
async def test_switchover_with_the_master_alive_loses_nothing(cluster, report):
    """A planned switchover: the old master is made read-only first and the replica waits
    for its last writes, so not even asynchronous replication loses one."""
    mode, master, replica, _ = cluster
    target = Target(f"127.0.0.1:{master.auth_port}", f"127.0.0.1:{master.kv_port}", "127.0.0.1", master.gateway_port)
    token = await new_token(target)
    attempts, switched_at, command = await write_through(target, token, lambda: failover_command(replica, master))
    assert (master.console("box.info.ro"), replica.console("box.info.ro")) == ("true", "false")
    verdict = await verify(target, token, attempts)
    figures = {
        "mode": mode,
        **verdict.summary(),
        "failover_command": command,
        "writes_failed_for_s": write_gap(attempts, switched_at),
    }
    report(figures)
    assert command["demoted"] == str(master.console_socket)
    assert verdict.lost == [] and verdict.corrupted == [] and verdict.failed_but_found == []
    assert sum(a.outcome == ACKED and a.at > switched_at + command["took_s"] for a in attempts) > 0
