"""tkv_common/metrics.py: snapshots summed over processes, exited workers kept, gauges live only."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tkv_common import metrics


def _samples(directory) -> dict[tuple, float]:
    text = generate_latest(metrics.exposition_registry(directory)).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _registry():
    registry = metrics.Registry()
    calls = metrics.Counter(registry, "calls_total", "Calls.", ("code",))
    open_ = metrics.Gauge(registry, "open_streams", "Open.")
    highest = metrics.Gauge(registry, "revision", "Revision.", aggregate="max")
    latency = metrics.Histogram(registry, "latency_seconds", "Latency.", buckets=(0.1, 1.0))
    return registry, calls, open_, highest, latency


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _write(directory, pid: int, registry) -> None:
    (directory / f"{pid}.json").write_text(json.dumps({"pid": pid, "metrics": registry.snapshot()}))


def test_counters_and_histograms_add_up_over_processes_and_keep_exited_ones(tmp_path):
    live, calls, open_, highest, latency = _registry()
    calls.labels("OK").inc(3)
    open_.set(2)
    highest.set(10)
    latency.observe(0.05)
    latency.observe(5)
    metrics.Publisher(tmp_path, live).publish()  # this process: alive

    exited, calls2, open2, highest2, latency2 = _registry()
    calls2.labels("OK").inc(4)
    calls2.labels("NotFound").inc()
    open2.set(7)  # an exited process's gauges no longer count
    highest2.set(99)
    latency2.observe(0.5)
    _write(tmp_path, _dead_pid(), exited)

    for _ in range(2):  # the second scrape reads the exited worker from exited.json
        samples = _samples(tmp_path)
        assert samples[("calls_total", (("code", "OK"),))] == 7
        assert samples[("calls_total", (("code", "NotFound"),))] == 1
        assert samples[("open_streams", ())] == 2
        assert samples[("revision", ())] == 10
        assert samples[("latency_seconds_bucket", (("le", "0.1"),))] == 1
        assert samples[("latency_seconds_bucket", (("le", "1.0"),))] == 2
        assert samples[("latency_seconds_bucket", (("le", "+Inf"),))] == 3
        assert samples[("latency_seconds_count", ())] == 3
        assert abs(samples[("latency_seconds_sum", ())] - 5.55) < 1e-9
    names = sorted(path.name for path in tmp_path.iterdir())
    assert names == sorted(["exited.json", f"{os.getpid()}.json"])


def test_a_restarted_worker_neither_loses_nor_double_counts(tmp_path):
    first, calls, *_ = _registry()
    calls.labels("OK").inc(5)
    _write(tmp_path, _dead_pid(), first)  # published, then died
    assert _samples(tmp_path)[("calls_total", (("code", "OK"),))] == 5
    second, calls2, *_ = _registry()  # its successor starts from zero under a new pid
    calls2.labels("OK").inc(2)
    metrics.Publisher(tmp_path, second).publish()
    assert _samples(tmp_path)[("calls_total", (("code", "OK"),))] == 7
    assert _samples(tmp_path)[("calls_total", (("code", "OK"),))] == 7


def test_a_min_gauge_is_the_lowest_of_the_live_processes(tmp_path):
    one, two = metrics.Registry(), metrics.Registry()
    metrics.Gauge(one, "connected", "Connected.", aggregate="min").set(1)
    metrics.Gauge(two, "connected", "Connected.", aggregate="min").set(0)
    # Two live processes: this one and the test runner's parent.
    metrics.Publisher(tmp_path, one).publish()
    parent = os.getppid()
    (tmp_path / f"{parent}.json").write_text(json.dumps({"pid": parent, "metrics": two.snapshot()}))
    assert _samples(tmp_path)[("connected", ())] == 0


def test_gauge_functions_are_read_at_snapshot_time(tmp_path):
    registry, _, open_, _, _ = _registry()
    queue = [1, 2, 3]
    open_.set_function(lambda: len(queue))
    assert registry.snapshot()["open_streams"]["samples"] == [[[], 3.0]]
    queue.pop()
    assert registry.snapshot()["open_streams"]["samples"] == [[[], 2.0]]


def test_prepare_directory_forgets_an_earlier_run(tmp_path):
    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "123.json").write_text("{}")
    metrics.prepare_directory(directory)
    assert list(directory.iterdir()) == []


def test_a_metric_defined_twice_is_refused():
    registry = metrics.Registry()
    metrics.Counter(registry, "x_total", "X.")
    try:
        metrics.Counter(registry, "x_total", "X again.")
    except ValueError:
        return
    raise AssertionError("a second definition of x_total was accepted")
