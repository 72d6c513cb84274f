"""The HA cell of `make bench` (bench/ha.py) for a second per case: both stacks start (a
single node and tests/ha/cluster.py's replica set), every case runs on each and is paired,
and the section renders. `make bench` takes half an hour; this finds a broken cell in
under a minute."""

from __future__ import annotations

import pytest

from bench import ha
from bench.run import Bench


@pytest.mark.slow
# Every start of tests/ha/cluster.py's replica set logs this once on each joining node (not
# the bench's doing; reported to the HA work).
@pytest.mark.log_errors_expected(r"duplicate connection with the same replica UUID")
def test_every_case_runs_on_both_stacks_and_is_paired(tmp_path):
    result = ha.measure(tmp_path, 1.0, 1, Bench, command="pytest")

    assert ha.problems(result) == []
    assert result["ha"]["leader"] == result["ha"]["leader_after"]
    assert result["ha"]["spaces_sync"] is True and result["ha"]["sync_quorum"] == 2
    cases = [(row["operation"], row["concurrency"], row["case"]) for row in result["cases"]]
    assert cases == list(ha.CASES)
    for row in result["cases"]:
        assert row["rps"]["single"] > 0 and row["rps"]["ha"] > 0, row
        assert row["rps_ratio"] is not None and row["p99_ms_ratio"] is not None, row
        assert sum(row["quorum_in_force"].values()) > 0, row  # sampled during the HA runs
        assert row["ha_cpu_us_per_call_by_part"]["tarantool replicas"] is not None
    # Every HA run counted the replicas' and etcd's CPU, not only the services'.
    assert all("tarantool-" + result["ha"]["leader"] in run["ha"]["server_cpu_by_process"] for run in result["runs"])
    assert set(result["idle_cores"]) == {"single", "ha"}
    text = "\n".join(ha.lines(result))
    assert "## HA against a single node" in text and "10-key write, 1 client, grpc-direct" in text
