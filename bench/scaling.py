"""Throughput beyond this 2-core box, on paper, from the CPU per call this run measured
(issue 16): written to docs/benchmarks/scaling.md by `make bench`.

    python -m bench.scaling [docs/benchmarks/results.json]   # rewrite it from saved results

The model, and what it leaves out (stated in the document too):
- every process's CPU per call (its cores during the case / calls per second) stays what it
  was here, at 64 clients. kv_svc and auth_svc scale by TKV_WORKERS (processes sharing a
  port) and Envoy by its worker threads, so their share grows with the cores;
- Tarantool runs every transaction in one thread (TX). Its ceiling is the limit case's
  calls per core of Tarantool (the same stored function called directly at 64 clients),
  though that CPU also includes the network (iproto) and WAL threads: a lower bound of the
  ceiling. v2 calls have no limit case: theirs is 1 / Tarantool's CPU per call in the case,
  lower still (per-call CPU falls as load rises);
- the cores go where the calls need them; the load generator is elsewhere.
Throughput(N cores) = min(N / total CPU per call, Tarantool's ceiling), with Tarantool's part
of the CPU per call taken at its ceiling.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

CORES = (2, 8, 16, 32)
PROCESSES = ("tarantool", "auth_svc", "kv_svc", "envoy")
# (operation, batch, case): what users do most, v1 and v2, reads and writes.
OPERATIONS = (
    ("read", 10, "grpc-direct"),
    ("read", 10, "http-envoy"),
    ("read", 100, "http-envoy"),
    ("read", 1000, "grpc-direct"),
    ("write", 10, "grpc-direct"),
    ("write", 10, "http-envoy"),
    ("write", 100, "grpc-direct"),
    ("batch-get v2", 10, "http-envoy"),
    ("batch-put v2", 10, "http-envoy"),
)


def per_call(row: dict) -> dict[str, float]:
    """µs of CPU per call of each server process."""
    return {name: 1e6 * row["server_cpu_by_process"].get(name, 0.0) / row["rps"] for name in PROCESSES}


def project(cpu_us: dict[str, float], cores: int, tarantool_ceiling: float) -> tuple[float, str]:
    """Calls a second on `cores` and what bounds them. Tarantool's CPU per call falls as its
    load rises (more requests per wake-up), so at the ceiling it costs 1 / ceiling a call."""
    at_ceiling = dict(cpu_us, tarantool=min(cpu_us["tarantool"], 1e6 / tarantool_ceiling))
    by_cores = cores * 1e6 / sum(at_ceiling.values())
    if tarantool_ceiling < by_cores:
        return tarantool_ceiling, "Tarantool's TX thread"
    return by_cores, "cores"


def ceiling(operation: str, batch: int, cpu_us: dict[str, float], limits: dict) -> tuple[float, str]:
    """Calls a second Tarantool's one TX thread allows: from the limit case of the same
    operation (the stored function called directly, Tarantool near one core: calls per
    core of Tarantool), else from the product's own CPU per call (lower)."""
    row = limits.get((operation, batch))  # v1 only: no limit case runs v2's functions
    if row and row["server_cpu_by_process"].get("tarantool"):
        return row["rps"] / row["server_cpu_by_process"]["tarantool"], "limit case"
    return (1e6 / cpu_us["tarantool"] if cpu_us["tarantool"] else float("inf")), "this case"


def document(results: list[dict], machine: dict) -> str:
    rows = {(r["operation"], r["batch"], r["case"]): r for r in results if r["concurrency"] == 64}
    lines = [
        "# Scaling beyond this machine, from measurements",
        "",
        f"Written by `make bench` (bench/scaling.py) from the run in results.md: {machine['cores']} cores "
        f"({machine['cpu']}), 64 clients, medians. Every figure below is either measured in that run "
        "(CPU per call) or computed from it by the model at the end; nothing was run on a larger machine.",
        "",
        "## CPU per call, by process (µs, measured)",
        "",
        "| operation | batch | case | req/s here | tarantool | auth_svc | kv_svc | envoy | total |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    projected = []
    for key in OPERATIONS:
        row = rows.get(key)
        if not row or not row["rps"]:
            continue
        cpu = per_call(row)
        lines.append(
            f"| {key[0]} | {key[1]} | {key[2]} | {row['rps']:,.0f} | "
            + " | ".join(f"{cpu[name]:.0f}" for name in PROCESSES)
            + f" | {sum(cpu.values()):.0f} |"
        )
        projected.append((key, row, cpu))
    limits = {
        (r["operation"], r["batch"]): r for r in results if r["case"] == "limit" and r["concurrency"] == 64 and r["rps"]
    }
    lines += [
        "",
        "## Projected calls a second (computed)",
        "",
        "| operation | batch | case | Tarantool ceiling (from) | "
        + " | ".join(f"{n} cores" for n in CORES)
        + " | bound |",
        "|---|---:|---|---:|" + "---:|" * len(CORES) + "---|",
    ]
    for key, _row, cpu in projected:
        top, source = ceiling(key[0], key[1], cpu, limits)
        figures = [project(cpu, n, top) for n in CORES]
        saturates = next((n for n, (_, bound) in zip(CORES, figures, strict=True) if bound != "cores"), None)
        lines.append(
            f"| {key[0]} | {key[1]} | {key[2]} | {top:,.0f} ({source}) | "
            + " | ".join(f"{rate:,.0f}" for rate, _ in figures)
            + f" | {'Tarantool from ' + str(saturates) + ' cores' if saturates else 'cores throughout'} |"
        )
    lines += ["", "## Tarantool's own ceiling (measured: the stored functions called directly)", ""]
    for (operation, batch), row in sorted(limits.items()):
        tarantool = row["server_cpu_by_process"].get("tarantool", 0.0)
        lines.append(
            f"- {operation} of {batch} keys: {row['rps']:,.0f} calls/s with Tarantool at {tarantool:.2f} cores "
            f"(its TX thread cannot pass 1.0; the client, at {row['client_cpu_cores']:.2f} cores, shares the box)"
        )
    lines += ["", *NOTES]
    return "\n".join(lines) + "\n"


NOTES = [
    "## The model and what it leaves out",
    "",
    "- Throughput(N) = min(N cores / total CPU per call, Tarantool's ceiling). The ceiling is the "
    "limit case's calls per core of Tarantool where one was measured (v1), else 1 / Tarantool's "
    "CPU per call in the case itself (v2; lower, as that CPU per call falls with load). The Python "
    "services scale by `TKV_WORKERS` (processes sharing one port with SO_REUSEPORT) and Envoy by "
    "`--concurrency`; set both to the cores they are given. Tarantool's CPU counts its network and "
    "WAL threads as well as TX, so its ceiling here is a lower bound.",
    "- CPU per call was measured with every process sharing 2 cores at 64 clients: context switches "
    "and cache misses of that crowding are in the figures; on more cores they fall, so the projections "
    "are conservative for the Python services and Envoy.",
    "- Not modelled: the network between machines (on one box there is none), Tarantool's WAL disk "
    "(`wal_mode = 'write'`: each commit is written, not fsynced; a deployment that syncs is capped by "
    "its disk's syncs a second times the pairs per call), and argon2 (Login's cost is auth_svc's alone, "
    "in results.md).",
    "",
    "## When Tarantool's TX thread saturates",
    "",
    "Past that point more cores for the services add nothing; the next steps, in order of cost:",
    "",
    "1. **Read replicas for reads.** Tarantool's asynchronous replicas hold every space, so kv_svc can "
    "send `tkv.kv_read` / `kv_get` / `kv_list` to replicas and only writes to the master. A revoked "
    "token still works on a replica until replication catches up (milliseconds on a LAN): the "
    "revocation promise (docs/token-revocation.md) then holds per replica, which must be stated.",
    "2. **Sharding by namespace.** Every v2 call names one namespace and each transaction touches "
    "one namespace (grants included: a grant lives with the namespace it opens), so namespaces "
    "shard cleanly across replica sets with Tarantool's vshard (bucket = hash of the namespace), in "
    "the container deployment (vshard is a rock added to the image; Debian's 2.6 here has no rocks, "
    "so none of this is measured). v1's one `shared` namespace is one shard: v1 traffic stays "
    "bounded by one TX thread; "
    "`users`, `tokens` and quotas need a router-side design (a user's usage spans shards), and so "
    "do the received-grants listing (by grantee, across namespaces) and the one revision counter "
    "that orders every change today (per-shard revisions would change what Watch's resume means).",
]


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/benchmarks/results.json")
    saved = json.loads(path.read_text())
    (path.parent / "scaling.md").write_text(document(saved["results"], saved["machine"]))


if __name__ == "__main__":
    main()
