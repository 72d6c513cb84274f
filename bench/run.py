"""`make bench`: throughput and latency of every path to the data, against the raw
Tarantool limit measured in the same run.

    python -m bench.run [--seconds 2] [--out docs/benchmarks] [--only ha]

Starts the whole stack on free loopback ports with a fresh data dir (TKV_WORKERS = cores,
default argon2 cost), preloads the keys, then for batches of 1, 10, 100 and 1000 keys
(values ~100-byte JSON objects) at 1, 16 and 64 concurrent clients measures, for Read and
Write:
  limit        the same stored functions called directly over asynctnt (no gRPC)
  grpc-direct  kv_svc over gRPC (h2load for reads; pre-built requests for writes)
  grpc-envoy   the same through Envoy
  http-envoy   HTTP/JSON through Envoy (wrk)
plus Login (argon2-bound, against the raw argon2 rate on all cores) and Register, and
10-key Reads and Writes on the HA replica set against a single node (bench/ha.py; alone
with `--only ha`, which updates only its section of results.md and its key of results.json).
Writes results.json, results.md and throughput.png to --out; exits 1 if any request
failed. Every figure is from this run; ratios are to the limit of this run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict
from functools import partial
from pathlib import Path

import jwt

from bench import before_v2, fanout, floor, ha, loadgen, observability, openloop, scaling, targets, write_path
from bench.cpu import children_cpu, cpu_in, cpu_seconds, process_tree, stolen_seconds
from tests.reliability.workload import Target, new_token
from tests.stack import Stack, start_all, stop_all
from tkv.kv.v1 import kv_pb2, kv_pb2_grpc
from tkv.kv.v2 import kv_pb2 as kv2_pb2

CORES = os.cpu_count() or 1
BATCHES = (1, 10, 100, 1000)
CONCURRENCY = (1, 16, 64)
# (batch, clients) of the targets: measured `--repeat` times, medians reported.
TARGET_CELLS = {(10, 64), (100, 64)}
OWASP = {"memory_cost": 19456, "rounds": 2, "parallelism": 1}
# Operations whose gRPC cases run h2load, which cannot see gRPC status codes.
H2LOAD_OPERATIONS = {"read", "batch-get v2", "list v2", "read open-loop"}
# API v2 beside v1, at the target cells' concurrency: (v2 operation, batch, v1 operation it
# is held against) for the ratios of issue 11.
V2_CONCURRENCY = 64
V2_PAIRS = (("batch-get v2", 10, "read"), ("batch-put v2", 10, "write"))
# Open loop (issue 16): 10-key Reads at this share of the closed-loop maximum.
OPEN_LOOP_BATCH, OPEN_LOOP_SHARE = 10, 0.5
# Watch fan-out (issue 12's target: p99 < 50 ms).
FANOUT_WATCHERS, FANOUT_RATE, FANOUT_SECONDS = 100, 1000, 5


class Bench:
    def __init__(self, stack: Stack, seconds: float, repeat: int):
        self.stack, self.seconds, self.repeat = stack, seconds, repeat
        self.target = Target.of(stack)
        self.server_pids = {name: process_tree(process.popen.pid) for name, process in stack.processes.items()}
        self.results: list[dict] = []

    def measure(self, case: str, operation: str, batch: int, concurrency: int, run) -> dict:
        client_before, log_offset, stolen_before = children_cpu(), self.kv_log_size(), stolen_seconds()
        samples, stop = [], threading.Event()

        def sample_server_cpu():  # every 50 ms, to cut out the timed window afterwards
            while not stop.is_set():
                samples.append((time.time(), {name: cpu_seconds(pids) for name, pids in self.server_pids.items()}))
                stop.wait(0.05)

        sampler = threading.Thread(target=sample_server_cpu)
        sampler.start()
        started = time.time()
        try:
            raw = run()
        finally:
            stop.set()
            sampler.join()
        samples.append((time.time(), {name: cpu_seconds(pids) for name, pids in self.server_pids.items()}))
        stolen = (stolen_seconds() - stolen_before) / (samples[-1][0] - started)
        # Python clients report their own window and CPU (start-up excluded); h2load and
        # wrk run the whole time.
        window = raw.get("window", (started, samples[-1][0]))
        cpu_by_process = {
            name: round(cpu_in([(t, cpu[name]) for t, cpu in samples], *window) / (window[1] - window[0]), 2)
            for name in self.server_pids
        }
        server_cpu = sum(cpu_by_process.values())
        if "client_cpu_seconds" in raw:
            client_cpu = raw["client_cpu_seconds"] / (window[1] - window[0])
        else:
            client_cpu = (children_cpu() - client_before) / (window[1] - window[0])
        seconds = raw.get("seconds", self.seconds)
        if "latencies" in raw:
            figures = loadgen.summary(
                raw["latencies"], seconds, batch, raw.get("errors", 0) + raw.get("http_errors", 0)
            )
        else:
            figures = {
                "requests": raw["requests"],
                "rps": round(raw["requests"] / seconds, 1),
                "keys_per_s": round(raw["requests"] * batch / seconds, 1),
                "p50_ms": raw["p50_ms"],
                "p99_ms": raw["p99_ms"],
                "errors": raw["errors"],
            }
        if "offered_rps" in raw:
            figures["offered_rps"] = raw["offered_rps"]
        if case in ("grpc-direct", "grpc-envoy") and operation in H2LOAD_OPERATIONS:
            figures["errors"] += loadgen.grpc_errors_since(self.stack.processes["kv_svc"].log_path, log_offset)
        figures.update(
            case=case,
            operation=operation,
            batch=batch,
            concurrency=concurrency,
            server_cpu_cores=round(server_cpu, 2),
            server_cpu_by_process=cpu_by_process,
            client_cpu_cores=round(client_cpu, 2),
            stolen_cores=round(stolen, 2),
        )
        self.results.append(figures)
        print(json.dumps(figures), flush=True)
        return figures

    def kv_log_size(self) -> int:
        return self.stack.processes["kv_svc"].log_path.stat().st_size


async def prepare(stack: Stack) -> tuple[str, list]:
    """A token, and what the stored functions take first for it (Claims.storage_args)."""
    target = Target.of(stack)
    token = await new_token(target)
    claims = jwt.decode(token, options={"verify_signature": False})
    async with target.grpc_channel(target.kv) as channel:
        stub = kv_pb2_grpc.KeyValueServiceStub(channel)
        for batch in BATCHES:
            request = kv_pb2.WriteRequest()
            for i in range(1, batch + 1):
                request.data.fields[f"read-{batch}-{i}"].struct_value.update(loadgen.VALUE)
            await stub.Write(request, metadata=[("authorization", f"Bearer {token}")])
    return token, [claims["jti"], claims["sub"], claims["account_id"], claims["token_epoch"]]


def tarantool_access(stack: Stack, token_args: list) -> dict:
    """How the limit cases reach the stored functions: as kv_svc does, with its user."""
    password = (stack.data_dir / "secrets" / "tarantool-tkv_kv.password").read_text().strip()
    return {
        "host": "127.0.0.1",
        "port": stack.tarantool_port,
        "user": "tkv_kv",
        "password": password,
        "token_args": token_args,
    }


def run_matrix(bench: Bench, token: str, token_args: list, batches, levels, extra=None) -> None:
    """`extra`: more cases by (batch, clients), run interleaved with these (run_v2)."""
    stack, seconds = bench.stack, bench.seconds
    limit = tarantool_access(stack, token_args)
    grpc_ports = (("grpc-direct", stack.kv_port), ("grpc-envoy", stack.gateway_port))
    for batch in batches:
        keys = [f"read-{batch}-{i}" for i in range(1, batch + 1)]
        read_message = kv_pb2.ReadRequest(keys=keys).SerializeToString()
        for concurrency in levels:
            processes = min(CORES, concurrency)
            clients = partial(loadgen.run_python_clients, processes=processes, concurrency=concurrency, seconds=seconds)
            cases = [
                (
                    "limit",
                    "read",
                    partial(clients, "limit", function="tkv.kv_read", batch=batch, read_keys=keys, **limit),
                ),
                *(
                    (
                        case,
                        "read",
                        partial(
                            loadgen.h2load,
                            port,
                            "/tkv.kv.v1.KeyValueService/Read",
                            read_message,
                            token,
                            concurrency,
                            seconds,
                        ),
                    )
                    for case, port in grpc_ports
                ),
                (
                    "http-envoy",
                    "read",
                    partial(
                        loadgen.wrk, stack.gateway_port, token, "read", batch, f"read-{batch}-", concurrency, seconds
                    ),
                ),
                (
                    "limit",
                    "write",
                    partial(clients, "limit", function="tkv.kv_write", batch=batch, read_keys=None, **limit),
                ),
                *(
                    (
                        case,
                        "write",
                        partial(clients, "grpc_write", address=f"127.0.0.1:{port}", token=token, batch=batch),
                    )
                    for case, port in grpc_ports
                ),
                (
                    "http-envoy",
                    "write",
                    partial(loadgen.wrk, stack.gateway_port, token, "write", batch, "", concurrency, seconds),
                ),
            ]
            # The cells the targets name run `repeat` times, interleaved; medians are reported.
            cases += (extra or {}).get((batch, concurrency), [])
            for _ in range(bench.repeat if (batch, concurrency) in TARGET_CELLS else 1):
                for case, operation, run in cases:
                    bench.measure(case, operation, batch, concurrency, run)


def run_v2(bench: Bench, token: str, interleave: dict | None = None) -> None:
    """API v2 (issue 11), the same way as v1: BatchGetPairs and BatchPutPairs of 10 keys,
    ListPairs of 1000-key pages against a 1000-key BatchGetPairs, and BatchDeletePairs of
    10 keys, each at 64 clients over gRPC and (but delete) HTTP through Envoy, `repeat`
    times interleaved. Reads use v1's preloaded keys, which live in `shared`. With
    `interleave`, the cases are added to it by (batch, clients) for run_matrix to run
    beside v1's instead."""
    stack, seconds, concurrency = bench.stack, bench.seconds, V2_CONCURRENCY
    processes = min(CORES, concurrency)
    clients = partial(loadgen.run_python_clients, processes=processes, concurrency=concurrency, seconds=seconds)
    kv, gateway = stack.kv_port, stack.gateway_port

    def h2(method: str, message) -> partial:
        path = f"/tkv.kv.v2.KeyValueService/{method}"
        return partial(loadgen.h2load, kv, path, message.SerializeToString(), token, concurrency, seconds)

    def keys(batch: int) -> list[str]:
        return [f"read-{batch}-{i}" for i in range(1, batch + 1)]

    get10 = kv2_pb2.BatchGetPairsRequest(namespace="shared", keys=keys(10))
    get1000 = kv2_pb2.BatchGetPairsRequest(namespace="shared", keys=keys(1000))
    list1000 = kv2_pb2.ListPairsRequest(namespace="shared", prefix="read-1000-", page_size=1000)
    grpc_write = partial(clients, "grpc_write", address=f"127.0.0.1:{kv}", token=token, batch=10)
    wrk = partial(loadgen.wrk, gateway, token)
    cases = [
        ("grpc-direct", "batch-get v2", 10, h2("BatchGetPairs", get10)),
        ("http-envoy", "batch-get v2", 10, partial(wrk, "v2read", 10, "read-10-", concurrency, seconds)),
        ("grpc-direct", "batch-put v2", 10, partial(grpc_write, api="v2")),
        ("http-envoy", "batch-put v2", 10, partial(wrk, "v2write", 10, "", concurrency, seconds)),
        ("grpc-direct", "batch-get v2", 1000, h2("BatchGetPairs", get1000)),
        ("http-envoy", "batch-get v2", 1000, partial(wrk, "v2read", 1000, "read-1000-", concurrency, seconds)),
        ("grpc-direct", "list v2", 1000, h2("ListPairs", list1000)),
        ("http-envoy", "list v2", 1000, partial(wrk, "v2list", 1000, "read-1000-", concurrency, seconds)),
    ]
    # Interleaved with v1's cases of the same batch (run_matrix): the machine's speed drifts
    # between minutes more than the two APIs differ, so v2 must be measured beside v1.
    # (`is not None`: the caller passes an empty dict to be filled.)
    if interleave is not None:
        for case, operation, batch, run in cases:
            interleave.setdefault((batch, concurrency), []).append((case, operation, run))
        return
    for _ in range(bench.repeat):
        for case, operation, batch, run in cases:
            bench.measure(case, operation, batch, concurrency, run)


def run_open_loop(bench: Bench, token: str) -> None:
    """10-key Read at a fixed offered load of half the maximum, over gRPC direct and HTTP
    through Envoy, `repeat` times interleaved (issue 16: latency with queueing, not Little's
    law). The maximum is measured just before each open-loop run, closed loop at 64 clients
    as in the matrix: this VM's speed drifts by up to 2x between minutes (the floor read
    5,876 and 10,296 calls/s in two runs of one day), and at half of a maximum measured
    minutes earlier one run looked saturated (p50 23 ms, p99 258 ms), two others not."""
    stack, seconds = bench.stack, max(bench.seconds, 5)
    keys = [f"read-{OPEN_LOOP_BATCH}-{i}" for i in range(1, OPEN_LOOP_BATCH + 1)]
    message = kv_pb2.ReadRequest(keys=keys).SerializeToString()
    cases = [
        (
            "grpc-direct",
            partial(loadgen.h2load, stack.kv_port, "/tkv.kv.v1.KeyValueService/Read", message, token, 64, 3),
            partial(loadgen.h2load_open_loop, stack.kv_port, "/tkv.kv.v1.KeyValueService/Read", message, token),
        ),
        (
            "http-envoy",
            partial(loadgen.wrk, stack.gateway_port, token, "read", OPEN_LOOP_BATCH, f"read-{OPEN_LOOP_BATCH}-", 64, 3),
            partial(
                openloop.http,
                stack.gateway_port,
                openloop.http_request(stack.gateway_port, "/api/read/", json.dumps({"keys": keys}).encode(), token),
            ),
        ),
    ]
    for _ in range(bench.repeat):
        for case, closed, run in cases:
            maximum = closed()
            calls = len(maximum["latencies"]) if "latencies" in maximum else maximum["requests"]
            rate = OPEN_LOOP_SHARE * calls / maximum.get("seconds", 3)
            figures = bench.measure(
                case, "read open-loop", OPEN_LOOP_BATCH, 64, partial(run, rate=rate, seconds=seconds)
            )
            figures["maximum_rps"] = round(calls / maximum.get("seconds", 3), 1)


def run_v2_deletes(bench: Bench, token: str, limit: dict) -> None:
    """BatchDeletePairs of 10 keys at 64 clients over gRPC and HTTP, `repeat` times."""
    stack, seconds, concurrency = bench.stack, bench.seconds, V2_CONCURRENCY
    processes = min(CORES, concurrency)
    clients = partial(loadgen.run_python_clients, processes=processes, concurrency=concurrency, seconds=seconds)
    grpc_write = partial(clients, "grpc_write", address=f"127.0.0.1:{stack.kv_port}", token=token, batch=10)
    # Deletes need pairs to delete: written beforehand through the stored function (twice
    # what the put case managed in the same time, so the deleters never run out).
    put_rps = max(r["rps"] for r in bench.results if (r["operation"], r["case"]) == ("batch-put v2", "grpc-direct"))
    per_process = int(2 * put_rps * seconds / processes) + 100
    for _ in range(bench.repeat):
        prefix = uuid.uuid4().hex[:8]
        for index in range(processes):
            asyncio.run(loadgen.prefill(**limit, batch=10, batches=per_process, prefix=f"{prefix}-{index}"))
        bench.measure(
            "grpc-direct", "batch-delete v2", 10, concurrency, partial(grpc_write, api="v2delete", prefix=prefix)
        )
        # Over HTTP: one key sequence per wrk thread (`prefix`-1, `prefix`-2, ...).
        put_http = max(r["rps"] for r in bench.results if (r["operation"], r["case"]) == ("batch-put v2", "http-envoy"))
        threads = loadgen.wrk_threads(concurrency)
        prefix = uuid.uuid4().hex[:8]
        for index in range(1, threads + 1):
            batches = int(2 * put_http * seconds / threads) + 100
            asyncio.run(loadgen.prefill(**limit, batch=10, batches=batches, prefix=f"{prefix}-{index}"))
        run = partial(loadgen.wrk, stack.gateway_port, token, "v2delete", 10, "", concurrency, seconds, run=prefix)
        bench.measure("http-envoy", "batch-delete v2", 10, concurrency, run)


def run_auth(bench: Bench, seconds: float) -> dict:
    stack = bench.stack
    login = jwt.decode(asyncio.run(new_token(bench.target)), options={"verify_signature": False})["sub"]
    message = (
        __import__("tkv.auth.v1.auth_pb2", fromlist=["x"])
        .LoginRequest(login=login, password="Secr3t!pass")
        .SerializeToString()
    )
    raw_rate = loadgen.raw_argon2_rate(OWASP, CORES, seconds)
    for _ in range(bench.repeat):
        bench.measure(
            "grpc-direct",
            "login",
            1,
            16,
            partial(loadgen.h2load, stack.auth_port, "/tkv.auth.v1.AuthService/Login", message, "unused", 16, seconds),
        )
    [login_figures] = [row for row in medians(bench.results) if row["operation"] == "login"]
    bench.measure(
        "grpc-direct",
        "register",
        1,
        16,
        partial(loadgen.run_python_clients, "register", CORES, 16, seconds, address=f"127.0.0.1:{stack.auth_port}"),
    )
    return {
        "raw_argon2_verifications_per_s": round(raw_rate, 1),
        "login_ratio_to_raw_argon2": round(login_figures["rps"] / raw_rate, 3),
    }


def medians(runs: list[dict]) -> list[dict]:
    """One row per case: the run with the median req/s (all of its figures), plus every
    run's req/s. With an even count the lower middle run is taken."""
    groups: dict[tuple, list[dict]] = {}
    for run in runs:
        groups.setdefault((run["operation"], run["batch"], run["concurrency"], run["case"]), []).append(run)
    rows = []
    for group in groups.values():
        ordered = sorted(group, key=lambda run: run["rps"])
        row = dict(ordered[(len(ordered) - 1) // 2])
        row["errors"] = sum(run["errors"] for run in group)
        if len(group) > 1:
            row["rps_runs"] = [run["rps"] for run in group]
        rows.append(row)
    return rows


def ratios(results: list[dict]) -> None:
    limits = {(r["operation"], r["batch"], r["concurrency"]): r for r in results if r["case"] == "limit"}
    for r in results:
        base = limits.get((r["operation"], r["batch"], r["concurrency"]))
        if base and base["rps"]:
            r["ratio_to_limit"] = round(r["rps"] / base["rps"], 3)


def markdown(results: list[dict], auth: dict, grpc_floor: dict, machine: dict) -> str:
    repeated = ", ".join(f"batches of {batch} at {clients} clients" for batch, clients in sorted(TARGET_CELLS))
    lines = [
        "# Benchmark results",
        "",
        f"Machine: {machine['cpu']} ({machine['cores']} cores), "
        f"Python {machine['python']}, Tarantool {machine['tarantool']}, Envoy {machine['envoy']}. "
        f"{machine['seconds']} s per case; {repeated}, and login, are the median of {machine['repeat']} "
        "interleaved runs. The load generator shares the cores (its CPU is the last "
        "column: where it nears a core, the client, not the server, is the limit).",
        "",
        "| operation | batch | clients | case | req/s | keys/s | p50 ms | p99 ms | × limit | server CPU "
        "| tarantool / auth / kv / envoy | client CPU |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in results:
        by_process = " / ".join(f"{cores:.2f}" for cores in r["server_cpu_by_process"].values())
        lines.append(
            f"| {r['operation']} | {r['batch']} | {r['concurrency']} | {r['case']} | {r['rps']:.0f} | "
            f"{r['keys_per_s']:.0f} | {r['p50_ms']} | {r['p99_ms']} | {r.get('ratio_to_limit', '')} | "
            f"{r['server_cpu_cores']} | {by_process} | {r['client_cpu_cores']} |"
        )
    lines += ["", *steal_lines(results), *v2_lines(results)]
    lines += [
        "",
        f"Login: raw argon2 (m=19 MiB, t=2, p=1) on {machine['cores']} cores: "
        f"{auth['raw_argon2_verifications_per_s']} verifications/s; Login through auth_svc reaches "
        f"{auth['login_ratio_to_raw_argon2']:.0%} of it.",
        "",
        f"The gRPC floor: {grpc_floor['processes']} do-nothing grpc.aio servers sharing a port (`python -m "
        f"bench.floor`, a fixed 10-key answer, no Tarantool) serve {grpc_floor['rps']:.0f} calls/s at 64 "
        f"clients, using {grpc_floor['cpu_cores']} cores ({grpc_floor['cpu_us_per_call']:.0f} µs of CPU per call)"
        + "".join(
            f"; kv_svc's 10-key Read over gRPC reaches {r['rps'] / grpc_floor['rps']:.0%} of it"
            for r in results
            if (r["operation"], r["batch"], r["concurrency"], r["case"]) == ("read", 10, 64, "grpc-direct")
        )
        + ".",
        "",
        *floor_with_tarantool_lines(grpc_floor),
    ]
    return "\n".join(lines)


def steal_lines(results: list[dict]) -> list[str]:
    """How much CPU the hypervisor took from this VM during the cases: a case measured
    under steal measured a slower machine than its neighbours."""
    stolen = sorted((r["stolen_cores"], r["operation"], r["batch"], r["case"]) for r in results if "stolen_cores" in r)
    if not stolen:
        return []
    most = stolen[-1]
    return [
        f"CPU stolen by the hypervisor (steal time over all cores) during the cases above: median "
        f"{stolen[len(stolen) // 2][0]} cores, most {most[0]} cores ({most[1]}, batch {most[2]}, {most[3]}).",
        "",
    ]


def floor_with_tarantool_lines(grpc_floor: dict) -> list[str]:
    second = grpc_floor.get("with_tarantool")
    if not second:
        return []
    return [
        f"The same servers making kv_svc's one Tarantool round trip per call (`tkv.kv_read` of the 10 keys "
        f"over asynctnt): {second['rps']:.0f} calls/s, {second['cpu_cores']} cores "
        f"({second['cpu_us_per_call']:.0f} µs of CPU per call in the servers, Tarantool's not counted), "
        f"{second['rps'] / grpc_floor['rps']:.0%} of the do-nothing floor.",
        "",
    ]


def v2_lines(results: list[dict]) -> list[str]:
    """API v2 held against v1 (issue 11's targets), from the medians above."""
    rps = {(r["operation"], r["batch"], r["case"]): r for r in results if r["concurrency"] == V2_CONCURRENCY}
    lines = ["API v2 against v1 (64 clients, medians):", ""]
    for operation, batch, v1_operation in V2_PAIRS:
        for case in ("grpc-direct", "http-envoy"):
            v2, v1 = rps.get((operation, batch, case)), rps.get((v1_operation, batch, case))
            if v2 and v1 and v1["rps"]:
                lines.append(
                    f"- {operation} of {batch} keys, {case}: {v2['rps']:.0f} req/s, "
                    f"{v2['rps'] / v1['rps']:.0%} of v1 {v1_operation} ({v1['rps']:.0f})"
                )
    for case in ("grpc-direct", "http-envoy"):
        listed, batch_get = rps.get(("list v2", 1000, case)), rps.get(("batch-get v2", 1000, case))
        if listed and batch_get and batch_get["keys_per_s"]:
            lines.append(
                f"- list v2 of 1000-key pages, {case}: {listed['keys_per_s']:.0f} keys/s, "
                f"{listed['keys_per_s'] / batch_get['keys_per_s']:.0%} of a 1000-key batch-get v2 "
                f"({batch_get['keys_per_s']:.0f})"
            )
    for case in ("grpc-direct", "http-envoy"):
        deleted = rps.get(("batch-delete v2", 10, case))
        if deleted:
            lines.append(f"- batch-delete v2 of 10 keys, {case}: {deleted['rps']:.0f} req/s")
    return lines


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not any(r["operation"] in ("read", "write") and r["concurrency"] == 64 for r in results):
        # A short run (`--concurrency 1`) has nothing to draw, and log axes of no points fail.
        print(f"no 64-client Reads or Writes: {path.name} not drawn", flush=True)
        return
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for axis, operation in zip(axes, ("read", "write"), strict=True):
        for case in ("limit", "grpc-direct", "grpc-envoy", "http-envoy"):
            points = sorted(
                (r["batch"], r["keys_per_s"])
                for r in results
                if r["case"] == case and r["operation"] == operation and r["concurrency"] == 64
            )
            axis.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=case)
        axis.set(
            xscale="log",
            yscale="log",
            xlabel="keys per request",
            ylabel="keys/s",
            title=f"{operation.capitalize()} at 64 concurrent clients",
        )
        axis.grid(True, which="both", alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def machine(seconds: float, repeat: int) -> dict:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    tarantool = subprocess.run(["tarantool", "--version"], capture_output=True, text=True).stdout.split()[1]
    envoy_version = subprocess.run(
        [str(Path(sys.executable).parent / "envoy"), "--version"], capture_output=True, text=True
    ).stdout
    envoy = re.search(r"/(\d+\.\d+\.\d+)/", envoy_version).group(1)
    return {
        "cpu": cpu,
        "cores": CORES,
        "python": platform.python_version(),
        "tarantool": tarantool,
        "envoy": envoy,
        "seconds": seconds,
        "repeat": repeat,
        "kernel": platform.release(),
    }


def run_fanout(stack: Stack, token: str, repeat: int) -> dict:
    """Watch fan-out (issue 12): 100 watchers of one prefix and a writer at 1,000 puts/s,
    `repeat` times, each beside the same writer with no watcher, whose CPU is the put
    path's: what the watchers add, per event delivered, is the difference."""
    runs = []
    for _ in range(repeat):
        alone = fanout.run_on(stack, token, 0, FANOUT_RATE, FANOUT_SECONDS)
        many = fanout.run_on(stack, token, FANOUT_WATCHERS, FANOUT_RATE, FANOUT_SECONDS)
        many["added_cpu_us_per_delivered_event"] = {
            name: round(
                (many["server_cpu_seconds"][name] - alone["server_cpu_seconds"][name]) / many["delivered"] * 1e6, 2
            )
            for name in many["server_cpu_seconds"]
        }
        many["no_watcher"] = alone
        print(json.dumps(many), flush=True)
        runs.append(many)
    ordered = sorted(runs, key=lambda run: run["latency_p99_ms"])
    return {"median": ordered[len(ordered) // 2], "runs": runs}


def _answered_text(run: dict) -> str:
    alone, many = run["no_watcher"]["put_answered_ms"], run["put_answered_ms"]
    return (
        f"a put's round trip (intended send -> answer) p50 {many['p50']} ms, p99 {many['p99']} ms, and with no "
        f"watcher (the same writer on the same stack just before) p50 {alone['p50']} ms, p99 {alone['p99']} ms"
    )


def _server_lag_text(run: dict) -> str:
    lag = run["server_lag_ms"]
    return (
        f"(tkv_watch_lag_seconds: per message sent on a watch, its oldest event's write -> sent, which bounds its "
        f"other events'; histogram_quantile's estimate from the buckets) p50 {lag['p50']} ms, p99 {lag['p99']} ms "
        f"over {lag['messages']} messages"
    )


def fanout_lines(result: dict) -> list[str]:
    m = result["median"]
    added = m["added_cpu_us_per_delivered_event"]
    p99s = ", ".join(f"{run['latency_p99_ms']}" for run in result["runs"])
    return [
        f"Watch fan-out ({m['watchers']} watchers of one prefix, one writer at {m['rate_per_s']:.0f} puts/s "
        f"open loop, in {m['writer']}, {m['puts']} puts; "
        f"median of {len(result['runs'])} runs by p99): "
        f"{m['put_errors']} puts failed {m['put_error_codes'] or ''}, {m['puts_stored']} stored; "
        f"{m['delivered']} of {m['expected_deliveries']} events delivered (every stored put to every watcher), "
        f"{m['watchers_complete_in_order']} of {m['watchers']} watchers complete and in revision order; "
        f"delivery latency p50 {m['latency_p50_ms']} ms, p99 {m['latency_p99_ms']} ms (runs: {p99s}), "
        f"over every event of {m['timed_watchers']} watchers; its halves: the put's way in (intended send -> "
        f"its stored call ran) p50 {m['put_to_stored_ms']['p50']} ms, p99 {m['put_to_stored_ms']['p99']} ms, "
        f"the watch's way out (-> received) p50 {m['stored_to_received_ms']['p50']} ms, "
        f"p99 {m['stored_to_received_ms']['p99']} ms; kv_svc's own lag {_server_lag_text(m)}; "
        f"{_answered_text(m)}; CPU added per delivered event "
        f"(against the same writer with no watcher): kv_svc {added['kv_svc']} µs, "
        f"tarantool {added['tarantool']} µs; client CPU {m['client_cpu_cores']} cores; "
        f"CPU stolen by the hypervisor {m.get('stolen_cores')} cores.",
        "",
    ]


def run_ha(directory: Path, args: argparse.Namespace) -> dict:
    """The HA cell (bench/ha.py); a failure to run it is recorded, not raised, so that the
    rest of a whole `make bench` is still written (and the run fails)."""
    command = " ".join(["python -m bench.run", *sys.argv[1:]])
    try:
        return ha.measure(directory / "ha-vs-single", args.seconds, args.repeat, Bench, command=command)
    except Exception as error:
        date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        return {"date": date, "command": command, "error": f"{type(error).__name__}: {error}"}


def main_only_ha(args: argparse.Namespace) -> int:
    """`--only ha`: the HA cell alone; its section of results.md and its key of
    results.json in --out are replaced, the rest kept."""
    with tempfile.TemporaryDirectory(prefix="tkv-bench-ha-") as directory:
        result = run_ha(Path(directory), args)
    args.out.mkdir(parents=True, exist_ok=True)
    results_json, results_md = args.out / "results.json", args.out / "results.md"
    everything = json.loads(results_json.read_text()) if results_json.exists() else {}
    everything["ha_vs_single"] = result
    results_json.write_text(json.dumps(everything, indent=2) + "\n")
    section = ha.lines(result)
    results_md.write_text(ha.replace_section(results_md.read_text() if results_md.exists() else "", section))
    print("\n".join(section))
    failed = ha.problems(result)
    for problem in failed:
        print(f"ERRORS: {problem}", file=sys.stderr)
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks"))
    parser.add_argument("--batches", default=",".join(map(str, BATCHES)), help="keys per request, comma-separated")
    parser.add_argument("--concurrency", default=",".join(map(str, CONCURRENCY)), help="clients, comma-separated")
    parser.add_argument("--repeat", type=int, default=5, help="runs of the target cells and of login (medians)")
    parser.add_argument("--only", choices=("ha",), help="run one part alone: ha, the HA replica set against one node")
    args = parser.parse_args()
    if args.only == "ha":
        return main_only_ha(args)
    batches = tuple(int(b) for b in args.batches.split(","))
    levels = tuple(int(c) for c in args.concurrency.split(","))
    with tempfile.TemporaryDirectory(prefix="tkv-bench-") as directory:
        stack = Stack(
            Path(directory),
            extra_env={
                "TKV_WORKERS": str(CORES),
                "TKV_ARGON2_MEMORY_KIB": "19456",
                "TKV_ARGON2_TIME_COST": "2",
                # The write cases add millions of pairs: far more than the tests' 128 MiB arena.
                "TKV_TARANTOOL_MEMORY_BYTES": str(6 * 1024**3),
                # ...all owned by the one benchmark user: no quota may bind.
                "TKV_KV_QUOTA_PAIRS": str(loadgen.WRITE_LIMITS["max_pairs"]),
                "TKV_KV_QUOTA_BYTES": str(loadgen.WRITE_LIMITS["max_bytes"]),
                **fanout.STACK_ENV,
            },
        )
        stack.processes = start_all(stack)
        try:
            token, token_args = asyncio.run(prepare(stack))
            bench = Bench(stack, args.seconds, args.repeat)
            v2_cases: dict = {}
            run_v2(bench, token, v2_cases)
            run_matrix(bench, token, token_args, batches, levels, v2_cases)
            # v2 cases of cells the matrix did not run (other --batches/--concurrency).
            for (batch, concurrency), cases in v2_cases.items():
                if batch not in batches or concurrency not in levels:
                    for _ in range(bench.repeat):
                        for case, operation, run in cases:
                            bench.measure(case, operation, batch, concurrency, run)
            run_v2_deletes(bench, token, tarantool_access(stack, token_args))
            run_open_loop(bench, token)
            watch_fanout = run_fanout(stack, token, args.repeat)
            observability_cost = observability.measure(stack, token, max(args.seconds, 4), 8, Path(directory))
            observability_control = observability.measure(
                stack, token, max(args.seconds, 4), 8, Path(directory), control=True
            )
            observability_cost["instructions"] = observability.instruction_cost(stack, token, Path(directory))
            # v1 before the v2 API: two more whole stacks; this one idles meanwhile.
            v1_before_v2 = before_v2.measure(max(args.seconds, 3), 6, Path(directory), CORES)
            v1_before_v2_control = before_v2.measure(max(args.seconds, 3), 6, Path(directory), CORES, control=True)
            # v2 against v1 the same way, on twin stacks of this tree (a cross-check of the
            # interleaved v2/v1 shares, whose repeats spread widely here).
            v2_share = before_v2.measure(max(args.seconds, 3), 6, Path(directory), CORES, v2_share=True)
            auth = run_auth(bench, max(args.seconds, 3))
            # What any Python gRPC service could reach here: as many do-nothing servers as workers.
            grpc_floor = floor.measure(CORES, max(args.seconds, 3))
            # ...and the same with kv_svc's one Tarantool round trip per call.
            grpc_floor["with_tarantool"] = floor.measure(
                CORES, max(args.seconds, 3), tarantool=tarantool_access(stack, token_args)
            )
        finally:
            stop_all(stack.processes)
        # Two more stacks of its own (a single node, the HA replica set); the bench's is gone.
        ha_cost = run_ha(Path(directory), args)
    results = medians(bench.results)
    ratios(results)
    read_10 = [
        r
        for r in results
        if (r["case"], r["operation"], r["batch"], r["concurrency"]) == ("grpc-direct", "read", 10, 64)
    ]
    if read_10:  # the cell the cost is stated against (absent with other --batches/--concurrency)
        observability_cost["python"] = observability.python_cost(
            1e6 * read_10[0]["server_cpu_by_process"]["kv_svc"] / read_10[0]["rps"]
        )
    info = machine(args.seconds, args.repeat)
    write_checks = write_path.measure()
    verdicts = targets.evaluate(
        results,
        bench.results,
        grpc_floor,
        watch_fanout,
        observability_cost,
        observability_control,
        v1_before_v2,
        v1_before_v2_control,
        v2_share,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(
        json.dumps(
            {
                "machine": info,
                "auth": auth,
                "grpc_floor": grpc_floor,
                "watch_fanout": watch_fanout,
                "observability_cost": observability_cost,
                "observability_control": observability_control,
                "v1_before_v2": v1_before_v2,
                "v1_before_v2_control": v1_before_v2_control,
                "v2_share_twin_stacks": v2_share,
                "targets": [asdict(verdict) for verdict in verdicts],
                "write_path_us_per_value": write_checks,
                "ha_vs_single": ha_cost,
                "results": results,
                "runs": bench.results,
            },
            indent=2,
        )
        + "\n"
    )
    report = (
        markdown(results, auth, grpc_floor, info)
        + "\n".join(targets.lines(verdicts))
        + "\n".join(fanout_lines(watch_fanout))
        + "\n".join(observability.lines(observability_cost, observability_control))
        + "\n".join(before_v2.lines(v1_before_v2, v1_before_v2_control))
        + "\n".join(before_v2.share_lines(v2_share, v1_before_v2_control))
        + "\n".join(write_path.lines(write_checks))
        + "\n".join(ha.lines(ha_cost))
    )
    (args.out / "results.md").write_text(report)
    plot(results, args.out / "throughput.png")
    (args.out / "scaling.md").write_text(scaling.document(results, info))
    failed = [r for r in results if r["errors"]]
    lost = [run for run in watch_fanout["runs"] if run["watchers_complete_in_order"] != run["watchers"]]
    if lost:
        print(f"ERRORS: in {len(lost)} watch fan-out runs a watcher missed stored events", file=sys.stderr)
    failed_puts = [run for run in watch_fanout["runs"] if run["put_errors"]]
    if failed_puts:
        print(f"ERRORS: in {len(failed_puts)} watch fan-out runs puts failed", file=sys.stderr)
    print(report)
    for r in failed:
        print(
            f"ERRORS: {r['errors']} in {r['case']} {r['operation']} batch={r['batch']} c={r['concurrency']}",
            file=sys.stderr,
        )
    if observability_cost["errors"] or observability_control["errors"]:
        print(f"ERRORS: {observability_cost['errors']} in the observability cost runs", file=sys.stderr)
    v1_errors = sum(row["errors"] for run in (v1_before_v2, v1_before_v2_control) for row in run["cases"].values())
    if v1_errors:
        print(f"ERRORS: {v1_errors} in the v1-before-v2 runs", file=sys.stderr)
    observability_errors = observability_cost["errors"] or observability_control["errors"]
    ha_problems = ha.problems(ha_cost)
    for problem in ha_problems:
        print(f"ERRORS: {problem}", file=sys.stderr)
    return 1 if failed or lost or failed_puts or observability_errors or v1_errors or ha_problems else 0


if __name__ == "__main__":
    sys.exit(main())
