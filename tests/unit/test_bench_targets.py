"""make bench's verdicts (bench/targets.py) and its open-loop HTTP client's response reading
(bench/openloop.py): a target table that says "met" wrongly, or a generator that misreads
answers, would misreport every run."""

import asyncio

import pytest

from bench import before_v2, openloop, targets


def result(operation, batch, case, rps, keys=None, cpu=None, concurrency=64):
    return {
        "operation": operation,
        "batch": batch,
        "case": case,
        "concurrency": concurrency,
        "rps": rps,
        "keys_per_s": keys if keys is not None else rps * batch,
        "server_cpu_cores": 1.9,
        "server_cpu_by_process": cpu or {"tarantool": 0.3, "auth_svc": 0.0, "kv_svc": 1.2, "envoy": 0.4},
    }


def open_loop_run(case, p99, offered, achieved):
    return {"operation": "read open-loop", "case": case, "p99_ms": p99, "offered_rps": offered, "rps": achieved}


def verdict(verdicts, start):
    [found] = [v for v in verdicts if v.measure.startswith(start)]
    return found


def test_ratios_are_judged_against_their_targets_at_the_boundary():
    results = [
        result("read", 10, "grpc-direct", 1000),
        result("read", 10, "http-envoy", 800),  # exactly 80 %: met
        result("read", 100, "grpc-direct", 1000),
        result("read", 100, "http-envoy", 799),  # just under: not met
        result("write", 100, "grpc-direct", 400),
        result("write", 100, "limit", 1000),  # 40 %: met
    ]
    verdicts = targets.evaluate(results, results, {"rps": 1430}, None, None)
    assert verdict(verdicts, "10-key Read, HTTP").met is True
    assert verdict(verdicts, "100-key Read, HTTP").met is False
    assert verdict(verdicts, "100-key Write").met is True
    # 1000 / 1430 is 69.9 % of the floor: not met; a case not run is not measured, never met.
    assert verdict(verdicts, "10-key Read, gRPC direct").met is False
    assert verdict(verdicts, "1000-key Read, HTTP").met is None


def test_an_open_loop_run_that_fell_behind_cannot_meet_its_target():
    runs = [
        open_loop_run("grpc-direct", 4.0, 1000, 999),
        open_loop_run("grpc-direct", 5.0, 1000, 1000),
        open_loop_run("http-envoy", 4.0, 1000, 1000),
        open_loop_run("http-envoy", 4.0, 1000, 900),  # sent 10 % late: its latencies omit that wait
    ]
    verdicts = targets.evaluate([], runs, {}, None, None)
    assert verdict(verdicts, "10-key Read p99 at half the measured maximum, open loop, grpc-direct").met is True
    assert verdict(verdicts, "10-key Read p99 at half the measured maximum, open loop, http-envoy").met is False


def test_fan_out_and_observability_verdicts():
    fanout = {
        "median": {
            "delivered": 10,
            "expected_deliveries": 10,
            "watchers": 2,
            "watchers_complete_in_order": 2,
            "put_errors": 0,
            "latency_p99_ms": 49.9,
            "put_to_stored_ms": {"p50": 1.0, "p99": 20.0},
            "stored_to_received_ms": {"p50": 10.0, "p99": 30.0},
            "no_watcher": {"put_answered_ms": {"p50": 2.0, "p99": 12.5}},
        }
    }
    cost = {"cpu_cost_percent": 1.0, "cost_percent": 1.0, "instructions": {"cost_percent": 3.0}}
    verdicts = targets.evaluate([], [], {}, fanout, cost)
    assert verdict(verdicts, "watch fan-out").met is True
    split = verdict(verdicts, "the row above in two halves")
    assert split.value == "20.0 ms; 30.0 ms" and targets._mark(split) == ""
    control = verdict(verdicts, "the same writer with no watcher")
    assert control.value == "2.0 ms; 12.5 ms" and control.met is None and targets._mark(control) == ""
    assert verdict(verdicts, "metrics + request ids").met is False  # judged on instructions: 3.0 is not < 3
    uncounted = {"cpu_cost_percent": 1.0, "cost_percent": 1.0}
    assert verdict(targets.evaluate([], [], {}, None, uncounted), "metrics + request ids").met is None
    lost = {"median": {**fanout["median"], "delivered": 9, "watchers_complete_in_order": 1, "latency_p99_ms": 10}}
    assert verdict(targets.evaluate([], [], {}, lost, None), "watch fan-out").met is False
    # Every event counted, but a watcher got them out of revision order: not met.
    disordered = {"median": {**fanout["median"], "watchers_complete_in_order": 1, "latency_p99_ms": 10}}
    assert verdict(targets.evaluate([], [], {}, disordered, None), "watch fan-out").met is False
    # Every stored put reached every watcher, but puts failed: not met either.
    failed_puts = {"median": {**fanout["median"], "put_errors": 3, "latency_p99_ms": 10}}
    assert verdict(targets.evaluate([], [], {}, failed_puts, None), "watch fan-out").met is False


def test_v1_before_v2_is_judged_per_case_at_95_percent_and_errors_fail_it():
    def run(ratio, errors=0):
        return {"ratio_median": ratio, "errors": errors, "runs": []}

    measured = {
        "before": "2a21ff8",
        "cases": {
            "10-key read, grpc-direct": run(0.95),  # exactly 95 %: met
            "100-key write, grpc-direct": run(0.949),
            "10-key read, http-envoy": run(1.2, errors=1),  # a faster run with errors proves nothing
        },
    }
    control = {"cases": {"10-key read, grpc-direct": run(1.01)}}
    verdicts = targets.evaluate([], [], {}, None, None, None, measured, control)
    read = verdict(verdicts, "v1 10-key read, grpc-direct")
    assert read.met is True and read.value == "95% (A/A control 101%)"
    assert verdict(verdicts, "v1 100-key write, grpc-direct").met is False
    assert verdict(verdicts, "v1 10-key read, http-envoy").met is False
    assert verdict(targets.evaluate([], [], {}, None, None), "v1 Read and Write against v1 before").met is None
    # CPU per call is shown beside the judged calls/s, and judges nothing.
    measured["cases"]["10-key read, grpc-direct"]["cpu_per_call_ratio_median"] = 1.2
    control["cases"]["10-key read, grpc-direct"]["cpu_per_call_ratio_median"] = 0.98
    read = verdict(targets.evaluate([], [], {}, None, None, None, measured, control), "v1 10-key read, grpc-direct")
    assert (read.met, read.value) == (True, "95% (A/A control 101%); CPU per call now / before 1.20 (A/A 0.98)")


def test_the_table_marks_every_verdict():
    verdicts = targets.evaluate([result("read", 10, "grpc-direct", 1000)], [], {"rps": 1000}, None, None)
    table = targets.lines(verdicts)
    assert table[0] == "## Targets"
    assert all(line.endswith(("| met |", "| **not met** |", "| not measured |", "|  |")) for line in table[4:-1])


def _read(raw: bytes) -> tuple[int, bytes]:
    async def run():
        reader = asyncio.StreamReader()
        reader.feed_data(raw)
        reader.feed_eof()
        status = await openloop._read_http_response(reader)
        return status, await reader.read()

    return asyncio.run(run())


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n",
    ],
)
def test_the_open_loop_client_reads_exactly_one_response(raw):
    status, rest = _read(raw + b"HTTP/1.1 401 Unauthorized\r\n")
    assert status == 200 and rest == b"HTTP/1.1 401 Unauthorized\r\n"  # the next response is left whole


def test_the_open_loop_client_reports_the_status():
    assert _read(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n")[0] == 401


def test_an_http_request_is_one_write_with_its_length():
    request = openloop.http_request(8080, "/api/read/", b'{"keys":["a"]}', "tok")
    head, _, body = request.partition(b"\r\n\r\n")
    assert body == b'{"keys":["a"]}' and b"Content-Length: 14" in head and b"Authorization: Bearer tok" in head


def test_v2_against_v1_is_the_median_of_per_repeat_ratios():
    # Three repeats; the VM's speed moves between them, the APIs' ratio within one does not.
    v1_read, v2_get = [1000, 600, 1400], [950, 560, 1300]  # 95 %, 93 %, 93 %
    v1_write, v2_put = [500, 300, 700], [400, 290, 560]  # 80 %, 97 %, 80 %
    runs = []
    for repeat in range(3):
        for operation, values in (("read", v1_read), ("write", v1_write), ("batch-get v2", v2_get)):
            for case in ("grpc-direct", "http-envoy"):
                runs.append(result(operation, 10, case, values[repeat]))
        runs.append(result("batch-put v2", 10, "grpc-direct", v2_put[repeat]))
    verdicts = targets.evaluate([], runs, {}, None, None)
    get = verdict(verdicts, "10-key batch-get v2, grpc-direct")
    assert (get.met, get.value) == (True, "93% (repeats 93%-95%)")
    put = verdict(verdicts, "10-key batch-put v2, grpc-direct")
    assert (put.met, put.value) == (False, "80% (repeats 80%-97%)")
    # No v2 put over HTTP was run: not measured, not met.
    assert verdict(verdicts, "10-key batch-put v2, http-envoy").met is None


def test_v2_shares_on_twin_stacks_are_shown_beside_the_judged_rows_not_judged():
    share = {
        "clients_each": 32,
        "cases": {
            "10-key batch-get v2, http-envoy / read": {
                "ratio_median": 0.873,
                "cpu_per_call_ratio_median": 1.072,
                "errors": 0,
                "v1_case": "10-key read, http-envoy",
                "runs": [{"ratio": 0.826}, {"ratio": 0.964}, {"ratio": None}],
            }
        },
    }
    [row] = [v for v in targets.evaluate([], [], {}, None, None, v2_share=share) if v.target == "a cross-check"]
    assert row.measure == "10-key batch-get v2, http-envoy / read: the share on twin stacks loaded at once"
    assert row.value == "87% (runs 83%-96%); CPU per call v2 / v1 1.07"
    assert row.met is None and targets._mark(row) == ""
    control = {"cases": {"10-key read, http-envoy": {"ratio_median": 1.008}}}
    table = before_v2.share_lines(share, control)
    assert "| 10-key batch-get v2, http-envoy / read | 0.873 | 1.008 | 0.826, 0.964, None | 1.072 | 0 |" in table
