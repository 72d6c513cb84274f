"""What observability costs a call (issue 15): kv_svc as it is — every call counted in the
gRPC metrics and the Tarantool-call histogram, published to /metrics, given a request id,
with tracing compiled in but off — against kv_svc of BEFORE, the last commit without any
of it, in the same run, on the same Tarantool and the same data.

Both serve the same TKV_WORKERS on their own ports; h2load sends 10-key Reads over gRPC
directly at 64 clients (no x-request-id from the client: the service makes one and sends
it back, the dearer case), alternating between the two, `repeat` times; the medians and
their ratio are reported. The older tree is `git archive BEFORE` plus the generated protos
of this one (the protos are unchanged since BEFORE).
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from bench import loadgen
from tests.stack import ROOT, Stack, free_port, grpc_serving, wait_for_port, wait_until
from tkv.kv.v1 import kv_pb2

BEFORE = "c14ce56"
BATCH, CLIENTS = 10, 64
METHOD = "/tkv.kv.v1.KeyValueService/Read"


def before_tree(directory: Path) -> Path:
    tree = directory / f"kv_svc-{BEFORE}"
    tree.mkdir()
    archive = subprocess.run(["git", "archive", BEFORE], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    for generated in ("auth", "kv", "internal"):
        shutil.copytree(ROOT / "tkv" / generated, tree / "tkv" / generated)
    return tree


def measure(stack: Stack, token: str, seconds: float, repeat: int, directory: Path) -> dict:
    tree = before_tree(directory)
    port = free_port()
    env = {**stack.env, "TKV_KV_LISTEN": f"127.0.0.1:{port}", "TKV_WORKER_SOCKET_DIR": ""}
    log = open(directory / "kv_svc-before.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen([sys.executable, "-m", "kv_svc"], cwd=tree, env=env, stdout=log, stderr=log)
    try:
        wait_for_port(port, process=process)
        wait_until(lambda: grpc_serving(port), "kv_svc of the earlier commit serving")
        message = kv_pb2.ReadRequest(keys=[f"read-{BATCH}-{i}" for i in range(1, BATCH + 1)]).SerializeToString()
        runs = []
        for _ in range(repeat):
            for code, target in (("before", port), ("now", stack.kv_port)):
                raw = loadgen.h2load(target, METHOD, message, token, CLIENTS, seconds)
                runs.append(
                    {"code": code, "rps": round(len(raw["latencies"]) / seconds, 1), "errors": raw["http_errors"]}
                )
                print({"observability_cost": runs[-1]}, flush=True)
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
    before = statistics.median(r["rps"] for r in runs if r["code"] == "before")
    now = statistics.median(r["rps"] for r in runs if r["code"] == "now")
    return {
        "before_commit": BEFORE,
        "batch": BATCH,
        "clients": CLIENTS,
        "before_rps": before,
        "now_rps": now,
        "cost_percent": round(100 * (1 - now / before), 1),
        "errors": sum(r["errors"] for r in runs),
        "runs": runs,
    }


def lines(result: dict) -> list[str]:
    return [
        "",
        "## What observability costs (issue 15)",
        "",
        f"10-key Read, gRPC direct, {result['clients']} clients, medians of {len(result['runs']) // 2} "
        f"interleaved runs: kv_svc of {result['before_commit']} (no metrics, request ids or tracing) "
        f"{result['before_rps']:,.0f} req/s; kv_svc now (metrics recorded and published, a request id "
        f"made and returned per call, tracing off) {result['now_rps']:,.0f} req/s: a cost of "
        f"{result['cost_percent']} % (target < 3 %).",
        "",
    ]
