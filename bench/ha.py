"""HA against a single node: what the replica set costs in steady state, measured in the
same run. Not judged (synchronous replication costs a round trip; this says how much).

    python -m bench.run --only ha [--seconds 2] [--repeat 5] [--out docs/benchmarks]

Two fresh stacks, started side by side with the same settings (TKV_WORKERS = cores, the
same arena and quotas), empty but for the 10 read keys: tests/stack.py's single Tarantool,
and tests/ha/cluster.py's replica set (3 Tarantool nodes, synchronous replication with
quorum 2, a failover agent beside each, leadership in 3 etcd members) with the services
following its leader. Both stay up for the whole cell, the one not loaded idling (what
each draws idle is measured first and shown).

The cases are the matrix's 10-key v1 cells (bench/run.py), driven the same way and
measured by the same Bench.measure: Read over gRPC direct (h2load) at 64 clients, the
control (a read is not replicated); Write at 64 clients over gRPC direct (Python clients),
HTTP through Envoy (wrk) and the limit (`tkv.kv_write` over asynctnt, on the leader: the
replica set's own cost, no service in front), and over gRPC direct at one client, where
no queue hides the round trip. About 3 minutes with the defaults (2 s, 5 repeats).

Each case runs on one stack and then on the other, seconds apart, which goes first
alternating from repeat to repeat: this VM's speed drifts by 20-50 % between minutes, so
each HA run is held against the single-node run beside it, and the ratios are medians of
the per-repeat ratios (as the v2/v1 shares). One stack at a time, not both at once as
bench/before_v2.py loads its twins: the round trip shows in latency, which two stacks
queueing for the same cores would blur. What other processes on the machine used during
each run is recorded beside it (bench/cpu.py others_cores): on a shared machine a run
beside someone else's load measured that load.

During the HA runs the leader's quorum in force (`box.cfg.replication_synchro_quorum`) is
sampled every 0.1 s: tarantool/tkv/ha.lua asks for the acknowledgement of every replica
that keeps up, never fewer than the configured 2, so in steady state a write waits for
both replicas. A change of leader during the cell, or any failed call, fails the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import os
import statistics
import subprocess
import threading
import time
from collections import Counter
from functools import partial
from pathlib import Path

import jwt

from bench import loadgen
from bench.cpu import cpu_seconds, others_cores, others_cpu
from tests.ha.cluster import HaCluster
from tests.reliability.workload import Target, new_token
from tests.stack import ROOT, Stack, start_all, stop_all
from tkv.kv.v1 import kv_pb2, kv_pb2_grpc

CORES = os.cpu_count() or 1
BATCH = 10
READ_KEYS = [f"read-{BATCH}-{i}" for i in range(1, BATCH + 1)]
# (operation, clients, case), in the order each repeat runs them.
CASES = (
    ("read", 64, "grpc-direct"),
    ("write", 64, "limit"),
    ("write", 64, "grpc-direct"),
    ("write", 64, "http-envoy"),
    ("write", 1, "grpc-direct"),
)
# Both stacks' settings beside tests/stack.py's defaults: the bench's workers, room for
# every write of the cell, no quota that could bind.
STACK_ENV = {
    "TKV_WORKERS": str(CORES),
    "TKV_TARANTOOL_MEMORY_BYTES": str(2 * 1024**3),
    "TKV_KV_QUOTA_PAIRS": str(loadgen.WRITE_LIMITS["max_pairs"]),
    "TKV_KV_QUOTA_BYTES": str(loadgen.WRITE_LIMITS["max_bytes"]),
}
SECTION = "## HA against a single node"
IDLE_SECONDS = 2.0
# The HA stack's processes by part, for its CPU per call (cpu_parts).
PARTS = ("services", "tarantool leader", "tarantool replicas", "etcd and agents")


async def _prepare(stack: Stack) -> tuple[str, list]:
    """A token, what the stored functions take first for it, and the read keys."""
    target = Target.of(stack)
    token = await new_token(target)
    claims = jwt.decode(token, options={"verify_signature": False})
    async with target.grpc_channel(target.kv) as channel:
        request = kv_pb2.WriteRequest()
        for key in READ_KEYS:
            request.data.fields[key].struct_value.update(loadgen.VALUE)
        stub = kv_pb2_grpc.KeyValueServiceStub(channel)
        await stub.Write(request, metadata=[("authorization", f"Bearer {token}")])
    return token, [claims["jti"], claims["sub"], claims["account_id"], claims["token_epoch"]]


def _tarantool_access(stack: Stack, port: int, token_args: list) -> dict:
    """How the limit case reaches the stored functions: as kv_svc does, with its user."""
    password = (stack.data_dir / "secrets" / "tarantool-tkv_kv.password").read_text().strip()
    return {"host": "127.0.0.1", "port": port, "user": "tkv_kv", "password": password, "token_args": token_args}


def _load(kind: tuple, stack: Stack, token: str, access: dict, seconds: float) -> partial:
    """The load of one case on one stack, as bench/run.py's matrix drives it."""
    operation, clients, case = kind
    processes = min(CORES, clients)
    if (operation, case) == ("read", "grpc-direct"):
        message = kv_pb2.ReadRequest(keys=READ_KEYS).SerializeToString()
        path = "/tkv.kv.v1.KeyValueService/Read"
        return partial(loadgen.h2load, stack.kv_port, path, message, token, clients, seconds)
    if case == "http-envoy":
        prefix = f"read-{BATCH}-" if operation == "read" else ""
        return partial(loadgen.wrk, stack.gateway_port, token, operation, BATCH, prefix, clients, seconds)
    if (operation, case) == ("write", "grpc-direct"):
        return partial(
            loadgen.run_python_clients,
            "grpc_write",
            processes=processes,
            concurrency=clients,
            seconds=seconds,
            address=f"127.0.0.1:{stack.kv_port}",
            token=token,
            batch=BATCH,
        )
    if case == "limit":
        function, read_keys = ("tkv.kv_read", READ_KEYS) if operation == "read" else ("tkv.kv_write", None)
        return partial(
            loadgen.run_python_clients,
            "limit",
            processes=processes,
            concurrency=clients,
            seconds=seconds,
            function=function,
            batch=BATCH,
            read_keys=read_keys,
            **access,
        )
    raise ValueError(f"no such case: {kind}")


def _idle_cores(pids: dict[str, dict[str, list[int]]], seconds: float) -> dict[str, dict[str, float]]:
    """Cores each process of each stack uses over `seconds` with no load at all."""
    before = {side: {name: cpu_seconds(p) for name, p in by_name.items()} for side, by_name in pids.items()}
    started = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - started
    return {
        side: {name: round((cpu_seconds(p) - before[side][name]) / elapsed, 3) for name, p in by_name.items()}
        for side, by_name in pids.items()
    }


@contextlib.contextmanager
def _quorum_samples(cluster: HaCluster, leader: str, interval: float = 0.1):
    """Counts of the leader's quorum in force, sampled while the block runs."""
    counts: Counter = Counter()
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            try:
                counts[cluster.console(leader, "box.cfg.replication_synchro_quorum", timeout=1) or "?"] += 1
            except OSError:
                counts["?"] += 1
            stop.wait(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield counts
    finally:
        stop.set()
        sampler.join()


def _tree() -> str:
    described = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True)
    return described.stdout.strip() or "unknown"


def measure(directory: Path, seconds: float, repeat: int, bench_type, *, command: str, cases=CASES) -> dict:
    """Both stacks started, every case `repeat` times on each (interleaved), then both
    stopped. `bench_type`: bench/run.py's Bench (passed in, as bench/run.py imports this
    module); one per stack measures its runs exactly as the matrix's are measured."""
    started = time.monotonic()
    date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    single = Stack(directory / "single", extra_env=dict(STACK_ENV))
    single.processes = {}
    cluster: HaCluster | None = None
    try:
        single.processes = start_all(single)
        cluster = HaCluster.create(directory / "ha", sync=True)
        cluster.stack.extra_env.update(STACK_ENV)
        cluster.start()
        cluster.stack.processes = cluster.processes
        leader = cluster.wait_for_leader()
        leader_state = (cluster.state(leader) or {}).get("node", {})
        stacks = {"single": single, "ha": cluster.stack}
        prepared = {side: asyncio.run(_prepare(stack)) for side, stack in stacks.items()}
        ports = {"single": single.tarantool_port, "ha": cluster.topology.node(leader).tarantool_port}
        access = {side: _tarantool_access(stacks[side], ports[side], prepared[side][1]) for side in stacks}
        benches = {side: bench_type(stack, seconds, repeat) for side, stack in stacks.items()}
        idle = _idle_cores({side: bench.server_pids for side, bench in benches.items()}, IDLE_SECONDS)
        runs = []
        for index in range(repeat):
            order = ("single", "ha") if index % 2 == 0 else ("ha", "single")
            for kind in cases:
                operation, clients, case = kind
                pair = {"repeat": index, "operation": operation, "batch": BATCH, "concurrency": clients, "case": case}
                pair["first"] = order[0]
                for side in order:
                    load = _load(kind, stacks[side], prepared[side][0], access[side], seconds)
                    others, began = others_cpu(), time.monotonic()
                    if side == "ha":
                        with _quorum_samples(cluster, leader) as quorum:
                            pair["ha"] = benches["ha"].measure(case, operation, BATCH, clients, load)
                        pair["quorum_in_force"] = dict(quorum)
                        pair["ha_cpu_cores_by_part"] = cpu_parts(pair["ha"]["server_cpu_by_process"], leader)
                    else:
                        pair["single"] = benches["single"].measure(case, operation, BATCH, clients, load)
                    # Whatever else ran on the machine meanwhile (neither stack nor the load).
                    pair[side]["others_cores"] = round(others_cores(others, others_cpu(), time.monotonic() - began), 2)
                runs.append(pair)
        leader_after = cluster.leader()
    finally:
        if cluster is not None:
            cluster.stop()
        stop_all(single.processes)
    return {
        "date": date,
        "command": command,
        "tree": _tree(),
        "cores": CORES,
        "workers": CORES,
        "seconds": seconds,
        "repeat": repeat,
        "ha": {
            "nodes": len(cluster.topology.nodes),
            "sync_quorum": cluster.topology.sync_quorum,
            "spaces_sync": leader_state.get("sync"),
            "leader": leader,
            "leader_after": leader_after,
        },
        "idle_cores": idle,
        "elapsed_s": round(time.monotonic() - started, 1),
        "cases": summarize(runs),
        "runs": runs,
    }


# --- pure: the figures and the text ---------------------------------------------------


def cpu_parts(by_process: dict[str, float], leader: str) -> dict[str, float]:
    """The HA stack's cores by part (PARTS) from Bench.measure's cores by process name
    (tests/ha/cluster.py names them tarantool-n1, agent-n1, etcd-n1, ...)."""
    parts = dict.fromkeys(PARTS, 0.0)
    for name, cores in by_process.items():
        if name == f"tarantool-{leader}":
            part = "tarantool leader"
        elif name.startswith("tarantool-"):
            part = "tarantool replicas"
        elif name.startswith(("etcd-", "agent-")):
            part = "etcd and agents"
        else:
            part = "services"
        parts[part] = round(parts[part] + cores, 3)
    return parts


def _median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 3) if values else None


def _ratio(ha: float | None, single: float | None) -> float | None:
    return round(ha / single, 3) if ha is not None and single else None


def _cpu_us_per_call(cores: float, rps: float) -> float | None:
    return round(cores / rps * 1e6, 1) if rps else None


def summarize(runs: list[dict]) -> list[dict]:
    """One row per case: each side's median calls/s, p50 and p99 and server CPU per call,
    and the medians of the per-repeat ratios HA / single (each HA run over the single-node
    run beside it), with every repeat's calls/s ratio."""
    groups: dict[tuple, list[dict]] = {}
    for run in runs:
        key = (run["operation"], run["batch"], run["concurrency"], run["case"])
        groups.setdefault(key, []).append(run)
    rows = []
    for (operation, batch, clients, case), pairs in groups.items():
        row = {"operation": operation, "batch": batch, "concurrency": clients, "case": case, "repeats": len(pairs)}
        for figure in ("rps", "p50_ms", "p99_ms"):
            row[figure] = {side: _median([p[side][figure] for p in pairs]) for side in ("single", "ha")}
            ratios = [_ratio(p["ha"][figure], p["single"][figure]) for p in pairs]
            row[f"{figure}_ratio"] = _median(ratios)
            if figure == "rps":
                row["rps_ratios"] = ratios
        cpu = {
            side: [_cpu_us_per_call(p[side]["server_cpu_cores"], p[side]["rps"]) for p in pairs]
            for side in ("single", "ha")
        }
        row["cpu_us_per_call"] = {side: _median(values) for side, values in cpu.items()}
        row["cpu_us_per_call_ratio"] = _median([_ratio(h, s) for h, s in zip(cpu["ha"], cpu["single"], strict=True)])
        row["ha_cpu_us_per_call_by_part"] = {
            part: _median([_cpu_us_per_call(p["ha_cpu_cores_by_part"][part], p["ha"]["rps"]) for p in pairs])
            for part in PARTS
        }
        quorum: Counter = Counter()
        for p in pairs:
            quorum.update(p.get("quorum_in_force", {}))
        row["quorum_in_force"] = dict(quorum)
        row["errors"] = sum(p[side]["errors"] for p in pairs for side in ("single", "ha"))
        rows.append(row)
    return rows


def problems(result: dict) -> list[str]:
    """What fails the run: failed calls on either stack, or a change of leader (a failover
    under the bench's load, which would also make the HA figures another thing)."""
    if "error" in result:
        return [f"the HA cell did not run: {result['error']}"]
    found = [
        f"{row['errors']} failed calls in the HA cell's {_case_text(row)}" for row in result["cases"] if row["errors"]
    ]
    ha = result["ha"]
    if ha["leader_after"] != ha["leader"]:
        found.append(f"the HA leader changed during the cell: {ha['leader']} -> {ha['leader_after']}")
    return found


def _case_text(row: dict) -> str:
    clients = f"{row['concurrency']} client{'' if row['concurrency'] == 1 else 's'}"
    return f"{row['batch']}-key {row['operation']}, {clients}, {row['case']}"


def _number(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _quorum_text(counts: dict) -> str:
    total = sum(counts.values())
    if not total:
        return "not sampled"
    return ", ".join(f"{quorum} in {n / total:.0%}" for quorum, n in sorted(counts.items()))


def lines(result: dict) -> list[str]:
    """The results.md section."""
    if "error" in result:
        return ["", SECTION, "", f"{result['date']}, `{result['command']}`: not measured ({result['error']}).", ""]
    ha = result["ha"]
    leader = (
        f"leader {ha['leader']} throughout"
        if ha["leader_after"] == ha["leader"]
        else f"leader {ha['leader']}, then {ha['leader_after']}"
    )
    out = [
        "",
        SECTION,
        "",
        f"{result['date']}, `{result['command']}` (tree {result['tree']}, {result['cores']} cores, "
        f"{result['elapsed_s']:.0f} s). A single Tarantool (tests/stack.py) against the HA replica set "
        f"(tests/ha/cluster.py: {ha['nodes']} Tarantool nodes, synchronous replication with quorum "
        f"{ha['sync_quorum']}, data spaces synchronous: {ha['spaces_sync']}, an agent per node, 3 etcd members; "
        f"{leader}), both fresh with TKV_WORKERS={result['workers']}, each case run on one and then the other, "
        f"which first alternating, {result['repeat']} repeats of {result['seconds']:g} s. HA / single is the "
        "median of the per-repeat ratios. Not judged: synchronous replication costs a round trip per write.",
        "",
        "| case | calls/s single → HA | HA / single (repeats) | p50 ms single → HA | p50 HA / single "
        "| p99 ms single → HA | p99 HA / single | server CPU µs per call single → HA "
        "| HA's per call: services / leader / replicas / etcd+agents µs | quorum in force (HA samples) | errors |",
        "|---|---|---|---|---:|---|---:|---|---|---|---:|",
    ]
    for row in result["cases"]:
        rps, p50, p99, cpu = row["rps"], row["p50_ms"], row["p99_ms"], row["cpu_us_per_call"]
        repeats = ", ".join(_share(r) for r in row["rps_ratios"])
        parts = " / ".join(_number(row["ha_cpu_us_per_call_by_part"][part]) for part in PARTS)
        quorum = _quorum_text(row["quorum_in_force"])
        out.append(
            f"| {_case_text(row)} "
            f"| {_number(rps['single'])} → {_number(rps['ha'])} | **{_share(row['rps_ratio'])}** ({repeats}) "
            f"| {_number(p50['single'], 2)} → {_number(p50['ha'], 2)} | {_share(row['p50_ms_ratio'])} "
            f"| {_number(p99['single'], 2)} → {_number(p99['ha'], 2)} | {_share(row['p99_ms_ratio'])} "
            f"| {_number(cpu['single'])} → {_number(cpu['ha'])} | {parts} | {quorum} | {row['errors']} |"
        )
    idle = {side: sum(by_process.values()) for side, by_process in result["idle_cores"].items()}
    out += [
        "",
        f"Idle, both stacks up and neither loaded ({IDLE_SECONDS:g} s): the single stack used "
        f"{idle['single']:.2f} cores, the HA stack {idle['ha']:.2f} "
        f"({_idle_parts(result['idle_cores']['ha'], ha['leader'])}); the stack not being measured idles on "
        "the same cores." + _others_text(result["runs"]),
        "",
    ]
    return out


def _others_text(runs: list[dict]) -> str:
    """What else used the machine's cores during the runs (neither stack nor the load)."""
    others = sorted(
        (run[side].get("others_cores", 0.0), side, _case_text(run)) for run in runs for side in ("single", "ha")
    )
    if not others:
        return ""
    most = others[-1]
    return (
        f" Other processes on the machine (neither stack nor the load generators) used a median "
        f"{others[len(others) // 2][0]:.2f} cores during the runs, at most {most[0]:.2f} ({most[1]}, {most[2]})."
    )


def _idle_parts(by_process: dict[str, float], leader: str) -> str:
    parts = cpu_parts(by_process, leader)
    return ", ".join(f"{part} {cores:.2f}" for part, cores in parts.items())


def replace_section(markdown: str, section: list[str]) -> str:
    """`markdown` with its HA section (from SECTION to the next `## ` heading) replaced by
    `section` (lines()), or with `section` appended if it has none."""
    body = "\n".join(section).strip("\n") + "\n"
    lines_ = markdown.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines_) if line.rstrip("\n") == SECTION), None)
    if start is None:
        return (markdown.rstrip("\n") + "\n\n" if markdown.strip() else "") + body
    end = next((i for i in range(start + 1, len(lines_)) if lines_[i].startswith("## ")), len(lines_))
    after = "".join(lines_[end:])
    return "".join(lines_[:start]) + body + ("\n" + after if after else "")
