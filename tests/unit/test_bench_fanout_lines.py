"""The fan-out paragraph of results.md (bench/run.py fanout_lines) names where the writer
ran, the put's round trip with and without watchers, and kv_svc's own lag."""

from __future__ import annotations

from bench import run


def test_the_paragraph_states_the_writer_and_both_round_trips():
    median = {
        "watchers": 100,
        "rate_per_s": 1000,
        "puts": 5000,
        "put_errors": 0,
        "put_error_codes": {},
        "puts_stored": 5000,
        "delivered": 500000,
        "expected_deliveries": 500000,
        "watchers_complete_in_order": 100,
        "latency_p50_ms": 26.5,
        "latency_p99_ms": 74.9,
        "timed_watchers": 10,
        "put_to_stored_ms": {"p50": 3.0, "p99": 29.2},
        "stored_to_received_ms": {"p50": 25.1, "p99": 61.3},
        "put_answered_ms": {"p50": 4.9, "p99": 40.9},
        "no_watcher": {"put_answered_ms": {"p50": 1.8, "p99": 11.7}},
        "added_cpu_us_per_delivered_event": {"kv_svc": 1.78, "tarantool": -0.1},
        "client_cpu_cores": 0.55,
        "writer": "a process of its own",
        "stolen_cores": 0.0,
        "server_lag_ms": {"messages": 15000, "p50": 39.6, "p99": 73.8},
    }
    [paragraph, _] = run.fanout_lines({"median": median, "runs": [median]})
    assert "one writer at 1000 puts/s open loop, in a process of its own, 5000 puts" in paragraph
    assert "a put's round trip (intended send -> answer) p50 4.9 ms, p99 40.9 ms" in paragraph
    assert "with no watcher (the same writer on the same stack just before) p50 1.8 ms, p99 11.7 ms" in paragraph
    assert "kv_svc's own lag (tkv_watch_lag_seconds" in paragraph
    assert "p50 39.6 ms, p99 73.8 ms over 15000 messages" in paragraph
