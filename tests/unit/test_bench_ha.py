"""The HA cell of `make bench` (bench/ha.py): its ratios are the medians of per-repeat
ratios HA / single, its section of results.md replaces only itself, and a failed call or a
change of leader fails the run."""

from __future__ import annotations

from bench import cpu, ha


def figures(rps: float, p50: float, p99: float, cores: float, errors: int = 0, others: float = 0.0) -> dict:
    return {
        "rps": rps,
        "p50_ms": p50,
        "p99_ms": p99,
        "server_cpu_cores": cores,
        "errors": errors,
        "others_cores": others,
    }


def pair(repeat: int, single: dict, ha_figures: dict, operation: str = "write", clients: int = 64) -> dict:
    return {
        "repeat": repeat,
        "operation": operation,
        "batch": 10,
        "concurrency": clients,
        "case": "grpc-direct",
        "first": "single" if repeat % 2 == 0 else "ha",
        "single": single,
        "ha": ha_figures,
        "quorum_in_force": {"3": 18, "2": 2},
        "ha_cpu_cores_by_part": {
            "services": 1.0,
            "tarantool leader": 0.3,
            "tarantool replicas": 0.2,
            "etcd and agents": 0.05,
        },
    }


# Three repeats whose machine speed drifts: HA is 0.8, 0.5 and 0.9 of the single node
# beside it, while the medians of each side alone (2000 and 1000) would say 0.5.
RUNS = [
    pair(0, figures(1000, 10, 40, 1.0), figures(800, 12, 60, 1.0)),
    pair(1, figures(2000, 5, 20, 1.0), figures(1000, 8, 30, 1.0, others=0.4)),
    pair(2, figures(4000, 4, 10, 1.0), figures(3600, 6, 30, 1.0)),
]


def result(runs=RUNS, leader_after: str = "n1") -> dict:
    return {
        "date": "2026-12-05 21:00 UTC",
        "command": "python -m bench.run --only ha",
        "tree": "abc1234",
        "cores": 2,
        "workers": 2,
        "seconds": 2.0,
        "repeat": 3,
        "elapsed_s": 180.0,
        "ha": {"nodes": 3, "sync_quorum": 2, "spaces_sync": True, "leader": "n1", "leader_after": leader_after},
        "idle_cores": {"single": {"tarantool": 0.01, "kv_svc": 0.01}, "ha": {"tarantool-n1": 0.01, "etcd-n2": 0.03}},
        "cases": ha.summarize(runs),
        "runs": runs,
    }


def test_ratios_are_medians_of_the_per_repeat_ratios_not_of_each_sides_medians():
    [row] = ha.summarize(RUNS)
    assert row["rps_ratios"] == [0.8, 0.5, 0.9]
    assert row["rps_ratio"] == 0.8
    assert row["rps"] == {"single": 2000, "ha": 1000}  # each side's own median, shown beside
    assert row["p50_ms_ratio"] == 1.5  # 1.2, 1.6, 1.5
    assert row["p99_ms_ratio"] == 1.5  # 1.5, 1.5, 3.0
    assert row["repeats"] == 3


def test_cpu_per_call_of_each_side_and_of_the_ha_stacks_parts():
    [row] = ha.summarize(RUNS)
    # 1 core at 1000, 2000, 4000 calls/s: 1000, 500, 250 µs; HA at 800, 1000, 3600.
    assert row["cpu_us_per_call"] == {"single": 500.0, "ha": 1000.0}
    assert row["cpu_us_per_call_ratio"] == 1.25  # 1.25, 2.0, 1.111
    assert row["ha_cpu_us_per_call_by_part"]["tarantool replicas"] == 200.0  # 0.2 cores at 1000/s
    assert row["quorum_in_force"] == {"3": 54, "2": 6}
    assert row["errors"] == 0


def test_cases_keep_their_order_and_errors_count_from_both_sides():
    runs = [
        pair(0, figures(100, 1, 2, 0.5), figures(90, 1, 2, 0.5), operation="read"),
        pair(0, figures(100, 1, 2, 0.5, errors=2), figures(90, 1, 2, 0.5, errors=1), clients=1),
    ]
    rows = ha.summarize(runs)
    assert [(row["operation"], row["concurrency"]) for row in rows] == [("read", 64), ("write", 1)]
    assert [row["errors"] for row in rows] == [0, 3]
    assert ha.problems(result(runs)) == ["3 failed calls in the HA cell's 10-key write, 1 client, grpc-direct"]


def test_cpu_parts_split_the_ha_stack_by_leader_replicas_etcd_and_services():
    by_process = {
        "etcd-n1": 0.01,
        "etcd-n2": 0.02,
        "tarantool-n1": 0.1,
        "agent-n1": 0.01,
        "tarantool-n2": 0.3,
        "tarantool-n3": 0.2,
        "auth_svc": 0.01,
        "kv_svc": 0.8,
        "envoy": 0.1,
    }
    assert ha.cpu_parts(by_process, "n2") == {
        "services": 0.91,
        "tarantool leader": 0.3,
        "tarantool replicas": 0.3,
        "etcd and agents": 0.04,
    }


def test_a_change_of_leader_fails_the_run_and_shows_in_the_section():
    assert ha.problems(result()) == []
    moved = result(leader_after="n3")
    assert ha.problems(moved) == ["the HA leader changed during the cell: n1 -> n3"]
    assert "leader n1, then n3" in "\n".join(ha.lines(moved))


def test_the_section_states_the_run_and_each_ratio():
    text = "\n".join(ha.lines(result()))
    assert text.startswith("\n## HA against a single node\n")
    assert "2026-12-05 21:00 UTC, `python -m bench.run --only ha` (tree abc1234, 2 cores, 180 s)" in text
    assert "leader n1 throughout" in text
    assert "| 10-key write, 64 clients, grpc-direct | 2,000 → 1,000 | **0.80** (0.80, 0.50, 0.90) " in text
    assert "| 5.00 → 8.00 | 1.50 | 20.00 → 30.00 | 1.50 | 500 → 1,000 | 1,000 / 300 / 200 / 50 |" in text
    assert "| 2 in 10%, 3 in 90% | 0 |" in text
    assert "Not judged" in text
    assert "at most 0.40 (ha, 10-key write, 64 clients, grpc-direct)" in text


def test_a_cell_that_did_not_run_says_why_and_fails_the_run():
    failed = {"date": "2026-12-05 21:00 UTC", "command": "make bench", "error": "TimeoutError: leader not ready"}
    assert "not measured (TimeoutError: leader not ready)" in "\n".join(ha.lines(failed))
    assert ha.problems(failed) == ["the HA cell did not run: TimeoutError: leader not ready"]


def test_the_section_replaces_only_itself_in_results_md():
    before = "# Benchmark results\n\nthe table\n\n## HA against a single node\n\nold figures\n\n## Later\n\nkept\n"
    section = ["", "## HA against a single node", "", "new figures", ""]
    after = ha.replace_section(before, section)
    assert after == before.replace("old figures", "new figures")
    assert ha.replace_section(after, section) == after


def test_the_section_is_appended_where_there_is_none():
    section = ["", "## HA against a single node", "", "figures", ""]
    assert ha.replace_section("# Results\n\nlast line", section) == (
        "# Results\n\nlast line\n\n## HA against a single node\n\nfigures\n"
    )
    assert ha.replace_section("", section) == "## HA against a single node\n\nfigures\n"
    # ...and, last in the file, replaced to the end.
    assert ha.replace_section("# R\n\n## HA against a single node\n\nold\n", section) == (
        "# R\n\n## HA against a single node\n\nfigures\n"
    )


def test_other_processes_cores_count_each_ones_growth_and_a_new_ones_whole_time():
    before = {(1, 10): 100, (2, 20): 50, (4, 40): 900}
    # 1 grew by 200 ticks; 2 ended and its pid came back as a new process (another start
    # time) that used 30; 3 started in between and used 70; 4 ended (missed, not negative).
    after = {(1, 10): 300, (2, 99): 30, (3, 30): 70}
    assert cpu.others_cores(before, after, 2.0) == (200 + 30 + 70) / cpu.TICKS / 2.0
