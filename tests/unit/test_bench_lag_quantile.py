"""kv_svc's own part of the fan-out's way out, read from its tkv_watch_lag_seconds
histogram (bench/fanout.py): quantiles estimated as Prometheus' histogram_quantile does, over
what a run added."""

from __future__ import annotations

import math

import pytest

from bench import fanout

INF = math.inf


def test_a_quantile_is_linear_within_its_bucket():
    # 10 at or under 10 ms, 30 more by 30 ms, 60 more by 50 ms: cumulative.
    buckets = {0.01: 10, 0.03: 40, 0.05: 100, INF: 100}
    assert fanout.histogram_quantile(0.1, buckets) == pytest.approx(0.01)
    assert fanout.histogram_quantile(0.25, buckets) == pytest.approx(0.02)  # halfway through 10-30 ms
    assert fanout.histogram_quantile(0.7, buckets) == pytest.approx(0.04)
    assert fanout.histogram_quantile(0.99, buckets) == pytest.approx(0.03 + 0.02 * 59 / 60)


def test_past_the_last_finite_bound_the_quantile_is_that_bound():
    assert fanout.histogram_quantile(0.99, {0.01: 10, 0.05: 50, INF: 100}) == pytest.approx(0.05)


def test_an_empty_histogram_has_no_quantile():
    assert fanout.histogram_quantile(0.5, {0.01: 0, INF: 0}) is None
    assert fanout.histogram_quantile(0.5, {}) is None


def test_a_runs_lag_is_what_the_histogram_grew_by():
    before = {0.01: 100, 0.05: 100, INF: 100}  # earlier runs: all within 10 ms
    after = {0.01: 100, 0.05: 200, INF: 200}  # this run: 100 messages, 10-50 ms

    lag = fanout.server_lag(before, after)

    assert lag == {"messages": 100, "p50": 30.0, "p99": 49.6}


def test_a_run_with_no_live_message_has_no_lag():
    same = {0.01: 5, INF: 5}
    assert fanout.server_lag(same, same) is None
    assert fanout.server_lag({}, {}) is None
