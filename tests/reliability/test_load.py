"""A bounded mixed load (register, login, write, read over gRPC and HTTP): no errors, flat
Tarantool connections. The 50-client, 60-second version and the 10-minute soak run with
`make soak`."""

import pytest

from tests.reliability.workload import Target, rss_kib, run_mixed_load, tarantool_connections

pytestmark = pytest.mark.slow


async def test_short_mixed_load_has_no_errors_and_flat_connections(stack, report):
    before = tarantool_connections(stack)
    rss_before = {name: rss_kib(p.popen.pid) for name, p in stack.processes.items()}
    latencies = await run_mixed_load(Target.of(stack), clients=20, seconds=8)
    after = tarantool_connections(stack)
    rss_after = {name: rss_kib(p.popen.pid) for name, p in stack.processes.items()}
    figures = latencies.report()
    report(
        {
            "operations": figures,
            "tarantool_connections": [before, after],
            "rss_kib": {name: [rss_before[name], rss_after[name]] for name in rss_before},
        }
    )
    assert {op: len(errors) for op, errors in latencies.errors.items() if errors} == {}, dict(latencies.errors)
    assert all(
        figures[f"{via} {op}"]["count"] > 0 for via in ("grpc", "http") for op in ("register", "login", "write", "read")
    )
    # One long-lived connection per service process (one process each here), however many
    # clients: 20 clients, 2 connections.
    assert before == after == 2
