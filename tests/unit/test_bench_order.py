"""make bench's order of cases (bench/run.py): v2 is held against v1 in ratios (issue 11),
so its cases must run beside v1's cases of the same cell, repeat by repeat. Until this test
they never did: an empty dict of cases to fill read as "no interleaving", and every run
measured v2 minutes before v1."""

from types import SimpleNamespace

from bench import run


class RecordingBench:
    stack = SimpleNamespace(kv_port=1, gateway_port=2)
    seconds = 1.0
    repeat = 3

    def __init__(self):
        self.calls: list[tuple[str, str, int, int]] = []

    def measure(self, case, operation, batch, concurrency, _run):
        self.calls.append((case, operation, batch, concurrency))


def test_v2_cases_run_between_v1_cases_of_their_cell_in_every_repeat(monkeypatch):
    monkeypatch.setattr(run, "tarantool_access", lambda stack, token_args: {})
    bench = RecordingBench()
    cases: dict = {}

    run.run_v2(bench, "token", cases)
    assert bench.calls == []  # only registered, for run_matrix to run

    run.run_matrix(bench, "token", [], [10], [64], cases)
    operations = [operation for _, operation, _, _ in bench.calls]
    per_repeat = len(operations) // bench.repeat
    assert per_repeat * bench.repeat == len(operations)
    for repeat in range(bench.repeat):
        cell = operations[repeat * per_repeat : (repeat + 1) * per_repeat]
        assert {"read", "write", "batch-get v2", "batch-put v2"} <= set(cell)
