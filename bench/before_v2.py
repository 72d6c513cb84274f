"""v1 against v1 before the v2 API (issue 11: "v1 itself no more than 5 % below its numbers
before this issue").

BEFORE_V2 is the last commit before the v2 storage (e621c75): one insert-only `kv` space,
no versions, owners, usage or change log. Its tree is `git archive BEFORE_V2` with the
protobuf code made by its own scripts/gen_protos.py, and it runs as a whole stack of its
own — its Tarantool schema, auth_svc, kv_svc and Envoy config — started by its own
tests/stack.py, beside a fresh stack of this tree started the same way: same settings,
same empty store, the same read keys (10- and 100-key sets) written first.

The cases are v1's cells of the bench table: Read and Write (new keys every call) of 10 and
100 keys over gRPC directly, and of 10 keys over HTTP through each stack's Envoy. This VM's speed
drifts by 20-50 % within a minute, so the two stacks are loaded *at the same time* with
the same load (CLIENTS each), sharing the cores: whichever costs more per call gets fewer
calls through, and both see the same machine. Both stacks start afresh for every run (see
measure()), and the one started first, which also starts its load first, alternates from
run to run (which one starts its load first measured 1-3 % in the observability case).
The median of the per-run ratios (now / before) is reported; `control` runs the same with
this tree on both sides (an A/A run: the method's noise and bias).

`v2_share` uses the same method for v2 against v1: both stacks are this tree's, one loaded
with a v2 call (10-key BatchGetPairs, BatchPutPairs) while the other runs the v1 call it is
compared with (Read, Write). The interleaved v2/v1 shares of `make bench` compare windows
seconds apart, which differ here by up to a third in what a call costs; this compares the
same seconds, and the A/A control above is its noise.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

from bench import loadgen
from bench.cpu import cpu_seconds, process_tree
from tests.stack import ROOT
from tkv.kv.v1 import kv_pb2
from tkv.kv.v2 import kv_pb2 as kv2_pb2

BEFORE_V2 = "2a21ff8"
BATCHES, CLIENTS = (10, 100), 32
READ_KEYS = [f"read-{batch}-{i}" for batch in BATCHES for i in range(1, batch + 1)]
# The stacks' settings beside each tree's test defaults (and `TKV_WORKERS` as the bench's):
# room for every write of the runs, and no quota of this tree's that could bind (the
# tree before has none).
STACK_ENV = {
    "TKV_TARANTOOL_MEMORY_BYTES": str(2 * 1024**3),
    "TKV_KV_QUOTA_PAIRS": str(loadgen.WRITE_LIMITS["max_pairs"]),
    "TKV_KV_QUOTA_BYTES": str(loadgen.WRITE_LIMITS["max_bytes"]),
}

# Runs in a stack's own tree (cwd and sys.path[0]): starts that tree's stack on its test
# settings, makes a user, a token and the read keys with that tree's generated code,
# prints what the bench needs as one JSON line, and stops the stack when stdin closes.
_STACK_HELPER = r"""
import json, sys
from pathlib import Path
sys.path.insert(0, ".")
import grpc
from tests.stack import Stack, start_all, stop_all
from tkv.auth.v1 import auth_pb2, auth_pb2_grpc
from tkv.kv.v1 import kv_pb2, kv_pb2_grpc

directory, env, workers = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
keys, value = json.loads(sys.argv[4]), json.loads(sys.argv[5])
stack = Stack(Path(directory), extra_env={**env, "TKV_WORKERS": workers})
processes = start_all(stack)
try:
    with grpc.insecure_channel(f"127.0.0.1:{stack.auth_port}") as channel:
        auth = auth_pb2_grpc.AuthServiceStub(channel)
        auth.Register(auth_pb2.RegisterRequest(login="BenchUser", password="Secr3t!pass", name="Anna", surname="Smith"))
        token = auth.Login(auth_pb2.LoginRequest(login="BenchUser", password="Secr3t!pass")).token
    with grpc.insecure_channel(f"127.0.0.1:{stack.kv_port}") as channel:
        request = kv_pb2.WriteRequest()
        for key in keys:
            request.data.fields[key].struct_value.update(value)
        kv_pb2_grpc.KeyValueServiceStub(channel).Write(request, metadata=[("authorization", f"Bearer {token}")])
    pids = {name: process.popen.pid for name, process in processes.items()}
    ready = {"kv_port": stack.kv_port, "gateway_port": stack.gateway_port, "token": token, "pids": pids}
    print(json.dumps(ready), flush=True)
    sys.stdin.read()
finally:
    stop_all(processes)
"""


def before_tree(directory: Path) -> Path:
    """BEFORE_V2's files, with the protobuf code its own script makes."""
    tree = directory / f"tkv-{BEFORE_V2}"
    if tree.exists():
        return tree
    tree.mkdir()
    archived = subprocess.run(["git", "archive", BEFORE_V2], cwd=ROOT, capture_output=True)
    if archived.returncode != 0:  # a shallow clone, say
        raise RuntimeError(f"v1 before v2: cannot read commit {BEFORE_V2} ({archived.stderr.decode().strip()})")
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archived.stdout, check=True)
    subprocess.run([sys.executable, "scripts/gen_protos.py"], cwd=tree, check=True, capture_output=True)
    return tree


class TreeStack:
    """One tree's whole stack, in a helper process of that tree's code (`env`: the helper's
    environment, which its processes inherit; default this one's)."""

    def __init__(self, tree: Path, data_dir: Path, workers: int, env: dict[str, str] | None = None):
        self.data_dir = data_dir
        if data_dir.exists():
            shutil.rmtree(data_dir)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _STACK_HELPER,
                str(data_dir),
                json.dumps(STACK_ENV),
                str(workers),
                json.dumps(READ_KEYS),
                json.dumps(loadgen.VALUE),
            ],
            cwd=tree,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.process.stdout.readline()
        if not line:
            self.process.wait(30)
            raise RuntimeError(f"the stack of {tree} did not start (exit {self.process.returncode})")
        ready = json.loads(line)
        self.kv_port, self.gateway_port, self.token = ready["kv_port"], ready["gateway_port"], ready["token"]
        self.pids: dict[str, int] = ready["pids"]

    @property
    def kv_log(self) -> Path:
        return self.data_dir / "kv_svc.log"

    def kv_log_size(self) -> int:
        return self.kv_log.stat().st_size

    def stop(self) -> None:
        self.process.stdin.close()
        self.process.wait(60)


def _cases(stack: TreeStack, seconds: float) -> dict:
    """The v1 cells, by (operation, transport, keys per call), each a function loading
    `stack` for `seconds`."""
    address = f"127.0.0.1:{stack.kv_port}"
    cases = {}
    for batch in BATCHES:
        message = kv_pb2.ReadRequest(keys=[f"read-{batch}-{i}" for i in range(1, batch + 1)]).SerializeToString()
        cases[("read", "grpc-direct", batch)] = partial(
            loadgen.h2load, stack.kv_port, "/tkv.kv.v1.KeyValueService/Read", message, stack.token, CLIENTS, seconds
        )
        cases[("write", "grpc-direct", batch)] = partial(
            loadgen.run_python_clients,
            "grpc_write",
            processes=1,
            concurrency=CLIENTS,
            seconds=seconds,
            address=address,
            token=stack.token,
            batch=batch,
        )
    for operation, prefix in (("read", f"read-{BATCHES[0]}-"), ("write", "")):
        cases[(operation, "http-envoy", BATCHES[0])] = partial(
            loadgen.wrk, stack.gateway_port, stack.token, operation, BATCHES[0], prefix, CLIENTS, seconds
        )
    return cases


def _v2_cases(stack: TreeStack, seconds: float) -> dict:
    """v2's 10-key BatchGetPairs and BatchPutPairs, over gRPC direct and HTTP, as _cases
    loads v1 (reads of the same preloaded keys, in `shared`)."""
    batch = BATCHES[0]
    get = kv2_pb2.BatchGetPairsRequest(namespace="shared", keys=[f"read-{batch}-{i}" for i in range(1, batch + 1)])
    return {
        ("batch-get v2", "grpc-direct", batch): partial(
            loadgen.h2load,
            stack.kv_port,
            "/tkv.kv.v2.KeyValueService/BatchGetPairs",
            get.SerializeToString(),
            stack.token,
            CLIENTS,
            seconds,
        ),
        ("batch-put v2", "grpc-direct", batch): partial(
            loadgen.run_python_clients,
            "grpc_write",
            processes=1,
            concurrency=CLIENTS,
            seconds=seconds,
            address=f"127.0.0.1:{stack.kv_port}",
            token=stack.token,
            batch=batch,
            api="v2",
        ),
        ("batch-get v2", "http-envoy", batch): partial(
            loadgen.wrk, stack.gateway_port, stack.token, "v2read", batch, f"read-{batch}-", CLIENTS, seconds
        ),
        ("batch-put v2", "http-envoy", batch): partial(
            loadgen.wrk, stack.gateway_port, stack.token, "v2write", batch, "", CLIENTS, seconds
        ),
    }


# v2 against v1 on twin stacks of this tree (`measure(..., v2_share=True)`): each v2 case
# on one stack while the v1 case it is compared with loads the other, at the same time.
V2_SHARE_PAIRS = {
    ("batch-get v2", "grpc-direct", 10): ("read", "grpc-direct", 10),
    ("batch-get v2", "http-envoy", 10): ("read", "http-envoy", 10),
    ("batch-put v2", "grpc-direct", 10): ("write", "grpc-direct", 10),
    ("batch-put v2", "http-envoy", 10): ("write", "http-envoy", 10),
}


def _case_name(case: tuple) -> str:
    return f"{case[2]}-key {case[0]}, {case[1]}"


def _rate(result: dict, seconds: float) -> tuple[float, int, int]:
    """Calls per second, errors and calls of one load generator's result (h2load and the
    Python clients give latencies, wrk counts)."""
    errors = result.get("errors", 0) + result.get("http_errors", 0)
    if "latencies" in result:
        return len(result["latencies"]) / seconds, errors, len(result["latencies"])
    return result["requests"] / result.get("seconds", seconds), errors, result["requests"]


def measure(
    seconds: float, repeat: int, directory: Path, workers: int, *, control: bool = False, v2_share: bool = False
) -> dict:
    """Every case `repeat` times, both stacks loaded at once; ratios now / before.

    Each run starts both stacks afresh: the same code's Tarantool differed by up to
    +-40 % of CPU per call from one process to the next (LuaJIT's traces and collector),
    which a pair of stacks kept for every run would carry into every ratio.

    With `v2_share`, both stacks are this tree's: "now" runs a v2 case and "before" the v1
    case it is compared with (V2_SHARE_PAIRS), and the ratio is v2's share of v1."""
    trees = {"before": ROOT if control or v2_share else before_tree(directory), "now": ROOT}
    runs: dict[tuple, list[dict]] = {}
    for index in range(repeat):
        order = ("before", "now") if index % 2 == 0 else ("now", "before")
        stacks: dict[str, TreeStack] = {}
        try:
            for code in order:
                data_dir = directory / f"data-{'control-' if control else ''}{code}"
                stacks[code] = TreeStack(trees[code], data_dir, workers)
            cases = {code: _cases(stack, seconds) for code, stack in stacks.items()}
            # Which case each side runs: the same one, or a v2 case beside its v1 case.
            plan = (
                {v2: {"before": v1, "now": v2} for v2, v1 in V2_SHARE_PAIRS.items()}
                if v2_share
                else {case: {"before": case, "now": case} for case in cases["now"]}
            )
            if v2_share:
                cases["now"].update(_v2_cases(stacks["now"], seconds))
            # Every process of each stack (its services' workers too).
            pids = {
                code: [child for pid in stack.pids.values() for child in process_tree(pid)]
                for code, stack in stacks.items()
            }
            for case, sides in plan.items():
                offsets = {code: stack.kv_log_size() for code, stack in stacks.items()}
                cpu_before = {code: cpu_seconds(pids[code]) for code in stacks}
                with ThreadPoolExecutor(2) as pool:
                    futures = {code: pool.submit(cases[code][sides[code]]) for code in order}
                    rates = {code: _rate(future.result(), seconds) for code, future in futures.items()}
                # CPU per call of each stack's processes: unlike calls/s, it does not hang
                # on which stack the scheduler favoured in this run (runs spread ~3x less).
                cpu_per_call = {
                    code: (cpu_seconds(pids[code]) - cpu_before[code]) / rates[code][2] * 1e6
                    for code in stacks
                    if rates[code][2]
                }
                errors = sum(
                    rates[code][1] + loadgen.grpc_errors_since(stacks[code].kv_log, offsets[code]) for code in stacks
                )
                runs.setdefault(case, []).append(
                    {
                        "before_rps": round(rates["before"][0], 1),
                        "now_rps": round(rates["now"][0], 1),
                        "errors": errors,
                        "ratio": round(rates["now"][0] / rates["before"][0], 3) if rates["before"][0] else None,
                        **{
                            f"{code}_cpu_us_per_call": round(cpu_per_call[code], 1) if code in cpu_per_call else None
                            for code in ("before", "now")
                        },
                    }
                )
        finally:
            for stack in stacks.values():
                stack.stop()
    results: dict[str, dict] = {}
    for case, case_runs in runs.items():
        ratios = [run["ratio"] for run in case_runs if run["ratio"] is not None]
        # CPU per call, now / before: below 1, a call costs the servers less than before.
        cpu_ratios = [
            run["now_cpu_us_per_call"] / run["before_cpu_us_per_call"]
            for run in case_runs
            if run["now_cpu_us_per_call"] and run["before_cpu_us_per_call"]
        ]
        name = _case_name(case)
        if v2_share:
            name += f" / {V2_SHARE_PAIRS[case][0]}"
        results[name] = {
            "ratio_median": round(statistics.median(ratios), 3) if ratios else None,
            "cpu_per_call_ratio_median": round(statistics.median(cpu_ratios), 3) if cpu_ratios else None,
            "errors": sum(run["errors"] for run in case_runs),
            "runs": case_runs,
        }
        if v2_share:  # the v1 case it is compared with, by its name in a control's results
            results[name]["v1_case"] = _case_name(V2_SHARE_PAIRS[case])
        label = "v2_share" if v2_share else "v1_before_v2_control" if control else "v1_before_v2"
        print(json.dumps({label: {name: results[name]}}), flush=True)
    return {
        "before": "this tree, v1" if v2_share else "this tree" if control else BEFORE_V2,
        "clients_each": CLIENTS,
        "stacks": "fresh for every run",
        "cases": results,
    }


def lines(result: dict, control: dict | None = None) -> list[str]:
    """The results.md paragraph."""
    out = [
        f"v1 now against v1 before the v2 API ({result['before']}): two whole stacks loaded at once, "
        f"{result['clients_each']} clients each; the median of the per-run ratios of calls/s, now / before, "
        "and of an A/A control with this tree on both sides:",
        "",
        "| v1 case | now / before | A/A control | runs (now / before) | server CPU per call, now / before "
        "(A/A) | errors |",
        "|---|---:|---:|---|---:|---:|",
    ]
    for case, row in result["cases"].items():
        runs = ", ".join(f"{run['ratio']}" for run in row["runs"])
        aa_row = (control or {}).get("cases", {}).get(case, {})
        aa, aa_cpu = aa_row.get("ratio_median", "—"), aa_row.get("cpu_per_call_ratio_median", "—")
        cpu = row.get("cpu_per_call_ratio_median", "—")
        out.append(f"| {case} | {row['ratio_median']} | {aa} | {runs} | {cpu} ({aa_cpu}) | {row['errors']} |")
    out.append("")
    return out


def share_lines(result: dict, control: dict | None = None) -> list[str]:
    """The results.md paragraph of `measure(..., v2_share=True)`; `control` is the A/A run
    of the v1 cases (the same method, nothing different on either side)."""
    out = [
        f"v2 against v1 on twin stacks of this tree, loaded at once, {result['clients_each']} clients each "
        "(a cross-check of the interleaved shares in Targets): the median of the per-run ratios of calls/s, "
        "v2 / v1, and the A/A control of the v1 case:",
        "",
        "| case | v2 / v1 | A/A control | runs | server CPU per call, v2 / v1 | errors |",
        "|---|---:|---:|---|---:|---:|",
    ]
    for case, row in result["cases"].items():
        runs = ", ".join(f"{run['ratio']}" for run in row["runs"])
        aa = (control or {}).get("cases", {}).get(row["v1_case"], {}).get("ratio_median", "—")
        cpu = row.get("cpu_per_call_ratio_median", "—")
        out.append(f"| {case} | {row['ratio_median']} | {aa} | {runs} | {cpu} | {row['errors']} |")
    out.append("")
    return out
