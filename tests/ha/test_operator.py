"""The operator's one command (`tkv-ha`): status, a planned switchover under load, and
maintenance mode pausing automatic failover; run as documented, against real processes."""

import asyncio
import json
import signal
import time

import pytest

from tests.ha.cluster import HaCluster
from tests.ha.scenarios import Load, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def cluster(tmp_path):
    cluster = HaCluster.create(tmp_path).start()
    yield cluster
    cluster.stop()


@pytest.mark.log_errors_expected(r"ER_READONLY", r"duplicate connection with the same replica UUID",
                                 r"ER_UNKNOWN_REPLICA: Replica .* is not registered")  # fmt: skip
async def test_status_then_a_switchover_under_load_loses_nothing(cluster, report):
    status = cluster.tkv_ha("status", "-o", "json")
    assert status.returncode == 0, status.stderr
    before = json.loads(status.stdout)
    assert before["leader"] == "n1" and before["leader_writable"] and 0 < before["lease_ttl_left_s"] <= 3
    assert [(n["name"], n["role"]) for n in before["nodes"]] == [("n1", "leader"), ("n2", "replica"), ("n3", "replica")]
    assert all(n["rows_behind"] == 0 for n in before["nodes"] if n["role"] == "replica")
    async with Load(cluster) as load:
        await load.until_acked(100)
        switched = await asyncio.to_thread(cluster.tkv_ha, "switchover", "n2")
        await load.until_acked(100)  # on the new leader
        violations = await load.finish(lossless=True)
    report({"switchover": switched.stdout.strip(), **load.history.summary()})
    assert (switched.returncode, switched.stdout.strip()) == (0, "n2 leads"), switched.stderr
    assert violations == [], violations[:10]
    after = json.loads(cluster.tkv_ha("status", "-o", "json").stdout)
    assert after["leader"] == "n2" and after["switchover_to"] is None
    assert cluster.writable_nodes() == ["n2"]


@pytest.mark.log_errors_expected(r"ER_READONLY", r"duplicate connection with the same replica UUID",
                                 r"ER_UNKNOWN_REPLICA: Replica .* is not registered")  # fmt: skip
async def test_maintenance_mode_pauses_failover_until_it_is_turned_off(cluster, report):
    on = cluster.tkv_ha("maintenance", "on")
    assert (on.returncode, on.stdout.strip()) == (0, "maintenance on: automatic failover paused")
    assert json.loads(cluster.tkv_ha("status", "-o", "json").stdout)["maintenance"] is True
    cluster.processes["tarantool-n1"].stop(signal.SIGKILL)
    # Long past the lease: no node takes over while failover is paused (watched throughout).
    until = time.monotonic() + cluster.topology.ttl * 2
    while time.monotonic() < until:
        assert cluster.writable_nodes() == []
        await asyncio.sleep(0.2)
    status = cluster.tkv_ha("status")
    assert status.returncode == 1 and "maintenance  on: automatic failover paused" in status.stdout
    off = cluster.tkv_ha("maintenance", "off")
    assert (off.returncode, off.stdout.strip()) == (0, "maintenance off: failover resumed")
    took = await wait_for(lambda: cluster.leader() in ("n2", "n3"), "a leader after maintenance", timeout=15)
    report({"leader_after_maintenance_off_s": round(took, 3)})  # measured, not asserted


def test_the_command_explains_bad_arguments(cluster):
    unknown = cluster.tkv_ha("switchover", "n9")
    assert unknown.returncode == 2 and "no node 'n9' in TKV_HA_PEERS (n1, n2, n3)" in unknown.stderr
