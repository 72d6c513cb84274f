"""What observability costs a call (issue 15): kv_svc as it is — every call counted in the
gRPC metrics and the Tarantool-call histogram, published to /metrics, given a request id,
with tracing compiled in but off — against kv_svc of BEFORE, the last commit without any
of it, in the same run, on the same Tarantool and the same data.

Both are started fresh for this (the stack's own kv_svc has served the whole matrix by
then), with the same TKV_WORKERS, on their own ports; h2load sends 10-key Reads over gRPC
directly (no x-request-id from the client: the service makes one). This VM's speed
drifts by 20-50 % within a minute, more than the effect measured, so the two are loaded
*at the same time*, 32 clients each, sharing the cores and Tarantool: whichever costs
more per call gets fewer calls through, and both see the same machine. `repeat` runs;
the median of the per-run ratios is reported. The older tree is `git archive BEFORE`
plus the generated protos of this one (the protos are unchanged since BEFORE).

Even so, one run's ratio strays by ±10 % (0.84-1.10 over 8 runs of a probe), so `python_cost`
also measures exactly what the call path's observation adds in Python per call — the
wrapper of now against the wrapper of BEFORE, on a stand-in context, best of several
timings — and states it as a share of what kv_svc spends per call (its CPU per 10-key
Read in the same run's matrix).
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench import loadgen
from bench.cpu import cpu_seconds, process_tree
from tests.stack import ROOT, Stack, free_port, grpc_serving, wait_for_port, wait_until
from tkv.kv.v1 import kv_pb2
from tkv_common import metrics

BEFORE = "c14ce56"
BATCH, CLIENTS = 10, 64
METHOD = "/tkv.kv.v1.KeyValueService/Read"


def before_tree(directory: Path) -> Path:
    tree = directory / f"kv_svc-{BEFORE}"
    if tree.exists():
        return tree
    tree.mkdir()
    archive = subprocess.run(["git", "archive", BEFORE], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    for generated in ("auth", "kv", "internal"):
        shutil.copytree(ROOT / "tkv" / generated, tree / "tkv" / generated)
    return tree


def measure(stack: Stack, token: str, seconds: float, repeat: int, directory: Path, *, control: bool = False) -> dict:
    """BEFORE against now; with `control`, now against itself (an A/A run: what the method
    reports when there is no difference, i.e. its noise and bias)."""
    trees = {"before": ROOT if control else before_tree(directory), "now": ROOT}
    ports = {code: free_port() for code in trees}
    processes = []
    for code, tree in trees.items():
        env = {
            **stack.env,
            "TKV_KV_LISTEN": f"127.0.0.1:{ports[code]}",
            "TKV_WORKER_SOCKET_DIR": "",
            # Now: served and published as `make run` does (BEFORE has no metrics at all).
            "TKV_KV_METRICS_LISTEN": f"127.0.0.1:{free_port()}",
        }
        log = directory / f"kv_svc-{code}.log"
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "kv_svc"], cwd=tree, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT
            )
        )
    try:
        for (code, port), process in zip(ports.items(), processes, strict=True):
            wait_for_port(port, process=process)
            wait_until(lambda port=port: grpc_serving(port), f"kv_svc {code} serving")
        message = kv_pb2.ReadRequest(keys=[f"read-{BATCH}-{i}" for i in range(1, BATCH + 1)]).SerializeToString()
        trees = {code: process_tree(process.pid) for code, process in zip(ports, processes, strict=True)}
        runs = []
        for index in range(repeat):
            cpu_before = {code: cpu_seconds(pids) for code, pids in trees.items()}
            # Which load starts first alternates: an A/A probe (one tree twice) favoured the
            # first by ~3 % when it was always BEFORE.
            order = ("before", "now") if index % 2 == 0 else ("now", "before")
            with ThreadPoolExecutor(2) as pool:
                loads = dict(
                    zip(
                        order,
                        pool.map(
                            lambda code: loadgen.h2load(ports[code], METHOD, message, token, CLIENTS // 2, seconds),
                            order,
                        ),
                        strict=True,
                    )
                )
            before, now = loads["before"], loads["now"]
            # Each process's CPU over the run (the two start and end together; warm-up and
            # tail are idle), per call it answered.
            cpu_us = {
                code: 1e6 * (cpu_seconds(pids) - cpu_before[code]) / max(1, len(result["latencies"]))
                for (code, pids), result in zip(trees.items(), (before, now), strict=True)
            }
            run = {
                "before_rps": round(len(before["latencies"]) / seconds, 1),
                "now_rps": round(len(now["latencies"]) / seconds, 1),
                "before_cpu_us_per_call": round(cpu_us["before"], 1),
                "now_cpu_us_per_call": round(cpu_us["now"], 1),
                "errors": before["http_errors"] + now["http_errors"],
            }
            run["ratio"] = round(run["now_rps"] / run["before_rps"], 3)
            run["cpu_ratio"] = round(cpu_us["now"] / cpu_us["before"], 3)
            runs.append(run)
            print({"observability_cost": run}, flush=True)
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)
    ratio = statistics.median(run["ratio"] for run in runs)
    cpu_ratio = statistics.median(run["cpu_ratio"] for run in runs)
    return {
        "control": control,
        "cpu_ratio": cpu_ratio,
        "cpu_cost_percent": round(100 * (cpu_ratio - 1), 1),
        "before_commit": BEFORE,
        "batch": BATCH,
        "clients": CLIENTS,
        "before_rps": statistics.median(run["before_rps"] for run in runs),
        "now_rps": statistics.median(run["now_rps"] for run in runs),
        "ratio": ratio,
        "cost_percent": round(100 * (1 - ratio), 1),
        "errors": sum(run["errors"] for run in runs),
        "runs": runs,
    }


def instruction_cost(stack: Stack, token: str, directory: Path) -> dict:
    """Instructions per 10-key Read of BEFORE's kv_svc and of now's (bench/instructions.py):
    the deterministic measure of what the call path added."""
    from bench import instructions

    counts = {
        "before": instructions.per_call(stack, token, before_tree(directory), directory, "before"),
        "now": instructions.per_call(stack, token, ROOT, directory, "now"),
    }
    ratio = counts["now"]["instructions_per_call"] / counts["before"]["instructions_per_call"]
    print({"observability_instructions": counts}, flush=True)
    return {**counts, "ratio": round(ratio, 4), "cost_percent": round(100 * (ratio - 1), 1)}


class _Context:
    """What the observation wrapper asks of grpc's ServicerContext: a direct call, no id."""

    def invocation_metadata(self):
        return (("authorization", "Bearer x"), ("user-agent", "grpc-python"))

    def code(self):
        return None

    def peer(self):
        return "ipv4:127.0.0.1:50000"

    def set_trailing_metadata(self, metadata):
        pass


def _logged_before(method: str, behaviour):
    """tkv_common/interceptors.py `logged` as of BEFORE, verbatim but for names: the
    baseline the observation wrapper replaced."""
    import logging
    import time

    import grpc

    from tkv_common import logs
    from tkv_common.interceptors import _CODES_BY_NUMBER, access_log

    level = logging.DEBUG if method.startswith("/grpc.health.") else logging.INFO

    async def call(request, context):
        started = time.perf_counter()
        try:
            return await behaviour(request, context)
        finally:
            if access_log.isEnabledFor(level):
                code = context.code() or grpc.StatusCode.OK
                if isinstance(code, int):
                    code = _CODES_BY_NUMBER.get(code, grpc.StatusCode.UNKNOWN)
                logs.fast_log(
                    access_log,
                    level,
                    "rpc",
                    method=method,
                    code=code.name,
                    duration_ms=round((time.perf_counter() - started) * 1000, 3),
                    peer=context.peer(),
                )

    return call


def python_cost(kv_cpu_us_per_call: float, calls: int = 20000, repeats: int = 7) -> dict:
    """µs per call of the observation wrapper now and of BEFORE's, and one Tarantool-call
    histogram observation; the difference as a share of kv_svc's CPU per call."""
    import asyncio
    import logging
    import time

    from tkv_common import interceptors
    from tkv_common.tarantool import CALL_SECONDS

    async def behaviour(request, context):
        return b""

    # The access-log line costs both alike (it is BEFORE's too): left out of both.
    logging.getLogger("tkv.access").setLevel(logging.WARNING)
    method = "/tkv.kv.v1.KeyValueService/Read"
    wrappers = {"now": interceptors.observed(method, "unary", behaviour), "before": _logged_before(method, behaviour)}
    context = _Context()

    async def timed(wrapper) -> float:
        started = time.perf_counter()
        for _ in range(calls):
            await wrapper(None, context)
        return (time.perf_counter() - started) / calls * 1e6

    async def all_timings() -> dict:
        best = {name: min([await timed(w) for _ in range(repeats)]) for name, w in wrappers.items()}
        timer = CALL_SECONDS.labels("tkv.kv_read")
        started = time.perf_counter()
        for _ in range(calls):
            timer.observe(0.001)
        best["tarantool_histogram"] = (time.perf_counter() - started) / calls * 1e6
        return best

    best = asyncio.run(all_timings())
    best["publish_ms"] = _publish_ms()
    added = best["now"] - best["before"] + best["tarantool_histogram"]
    return {
        "wrapper_now_us": round(best["now"], 2),
        "wrapper_before_us": round(best["before"], 2),
        "tarantool_histogram_us": round(best["tarantool_histogram"], 2),
        "added_us": round(added, 2),
        "kv_svc_cpu_us_per_call": round(kv_cpu_us_per_call, 1),
        "added_percent": round(100 * added / kv_cpu_us_per_call, 2),
        # A worker publishes its snapshot every PUBLISH_SECONDS, whatever the load.
        "publish_ms": round(best["publish_ms"], 3),
        "publish_core_percent": round(100 * best["publish_ms"] / 1000 / metrics.PUBLISH_SECONDS, 3),
    }


def _publish_ms(repeats: int = 50) -> float:
    """One worker's snapshot publish, with kv_svc's series created as at start-up."""
    import tempfile
    import time

    from grpc_health.v1 import health

    import kv_svc.server  # noqa: F401 (defines kv_svc's metrics and loads its service descriptors)
    from tkv_common import interceptors

    interceptors.initialize_metrics(["tkv.kv.v1.KeyValueService", "tkv.kv.v2.KeyValueService", health.SERVICE_NAME])
    with tempfile.TemporaryDirectory() as directory:
        publisher = metrics.Publisher(Path(directory))
        best = float("inf")
        for _ in range(repeats):
            started = time.perf_counter()
            publisher.publish()
            best = min(best, time.perf_counter() - started)
    return best * 1000


def lines(result: dict, control: dict | None = None) -> list[str]:
    runs = ", ".join(
        f"{run['now_rps']:,.0f}/{run['before_rps']:,.0f} ({run['now_cpu_us_per_call']:.0f}/"
        f"{run['before_cpu_us_per_call']:.0f} µs)"
        for run in result["runs"]
    )
    out = [
        "",
        "## What observability costs (issue 15)",
        "",
        f"10-key Read, gRPC direct, the two loaded at the same time with {result['clients'] // 2} clients "
        f"each, which one starts first alternating: kv_svc of {result['before_commit']} (no metrics, request "
        f"ids or tracing) and kv_svc now (metrics recorded and published, a request id made per call, "
        f"tracing off). Per run, now/before: {runs} req/s (CPU per call). Medians: CPU per call "
        f"{result['cpu_ratio']:.3f} of BEFORE's, a cost of {result['cpu_cost_percent']} %; req/s "
        f"{result['ratio']:.3f}, a cost of {result['cost_percent']} % (target < 3 %).",
        "",
    ]
    if control:
        out += [
            f"The control, now against itself the same way (no difference to find): CPU per call "
            f"{control['cpu_ratio']:.3f}, req/s {control['ratio']:.3f}; per run "
            + ", ".join(f"{run['cpu_ratio']:.3f}" for run in control["runs"])
            + " (CPU ratios): the method's noise at this many runs.",
            "",
        ]
    counted = result.get("instructions")
    if counted:
        out += [
            f"Instructions per 10-key Read, counted by callgrind (bench/instructions.py; one process, "
            f"{counted['now']['calls']} and twice as many sequential calls, metrics publishing off in both, "
            f"deterministic to ~0.2 %): BEFORE {counted['before']['instructions_per_call']:,}, now "
            f"{counted['now']['instructions_per_call']:,}: **{counted['cost_percent']:+} %** (target < 3 %).",
            "",
        ]
    return out + python_lines(result.get("python"))


def python_lines(python: dict | None) -> list[str]:
    if not python:
        return []
    return [
        f"What it adds in Python per call, measured exactly: the observation wrapper takes "
        f"{python['wrapper_now_us']} µs against BEFORE's {python['wrapper_before_us']} µs, and a "
        f"Tarantool call's histogram observation {python['tarantool_histogram_us']} µs: "
        f"{python['added_us']} µs of the {python['kv_svc_cpu_us_per_call']} µs of CPU kv_svc spends per "
        f"10-key Read in this run, {python['added_percent']} % (target < 3 %). Tracing off adds no "
        f"wrapper and one comparison per Tarantool call. Publishing a worker's snapshot takes "
        f"{python['publish_ms']} ms every 0.5 s: {python['publish_core_percent']} % of a core, whatever the load.",
        "",
    ]
