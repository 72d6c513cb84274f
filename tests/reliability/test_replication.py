"""A replica of the master, manual failover (docs/operations.md), and the durability check
run through it: asynchronous replication may lose the last acknowledged writes (reported),
synchronous replication (quorum 2, experimental on Tarantool 2.6) must lose none."""

import asyncio
import shutil
import signal
import time
import uuid

import pytest

from tests.reliability.workload import ACKED, Target, new_token, verify, writer
from tests.stack import Stack, auth_svc, kv_svc, stop_all, tarantool, wait_until

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
        await asyncio.sleep(3 * CALL_TIMEOUT)
        stop.set()
        await task
        # Past the quorum's timeout every waiting transaction has been rolled back.
        await asyncio.sleep(SYNC_TIMEOUT)
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


async def test_failover_to_the_replica(cluster, report):
    mode, master, replica, processes = cluster
    target = Target(f"127.0.0.1:{master.auth_port}", f"127.0.0.1:{master.kv_port}", "127.0.0.1", master.gateway_port)
    token = await new_token(target)
    assert int(replica.console("box.space.users:len()")) == 1  # replicated already

    stop, attempts = asyncio.Event(), []
    prefix = f"repl-{uuid.uuid4().hex[:8]}"
    tasks = [asyncio.create_task(writer(target, token, "grpc", f"{prefix}-{i}", stop, attempts)) for i in range(6)]
    await asyncio.sleep(2.0)
    processes["master"].stop(signal.SIGKILL)
    killed_at = time.monotonic()

    # The documented manual failover: promote the replica, point the services at it.
    # In sync mode the survivor is alone: quorum 1 until a new replica joins, then settle
    # the transactions the old master left waiting for a quorum.
    promote = (
        "box.cfg{read_only = false, replication_synchro_quorum = 1}; box.ctl.clear_synchro_queue()"
        if mode == "sync"
        else "box.cfg{read_only = false}"
    )
    # On 2.6 clear_synchro_queue() may wait replication_synchro_timeout (5 s here) for
    # what the dead master left in the queue.
    replica.console(promote, timeout=30)
    assert replica.console("box.info.ro") == "false"
    for name in ("auth_svc", "kv_svc"):
        processes[name].stop()
    master.extra_env["TKV_TARANTOOL_ADDR"] = f"127.0.0.1:{replica.tarantool_port}"
    processes["auth_svc"], processes["kv_svc"] = auth_svc(master), kv_svc(master)
    await asyncio.to_thread(processes["auth_svc"].start)
    await asyncio.to_thread(processes["kv_svc"].start)
    failover_s = round(time.monotonic() - killed_at, 2)
    await asyncio.sleep(1.5)
    stop.set()
    await asyncio.gather(*tasks)

    verdict = await verify(target, await new_token(target), attempts)
    figures = {
        "mode": mode,
        **verdict.summary(),
        "failover_s": failover_s,
        "acked_after_failover": sum(a.outcome == ACKED and a.at > killed_at + failover_s for a in attempts),
    }
    report(figures)
    assert verdict.corrupted == [] and verdict.failed_but_found == []
    assert figures["acked_after_failover"] > 0  # the promoted replica serves writes
    if mode == "sync":
        assert verdict.lost == [], f"synchronous replication lost acknowledged writes: {verdict.lost[:10]}"
