"""The per-call floor of a Python gRPC server on this machine: grpc.aio processes (uvloop)
sharing one port that answer every Read with the same pre-encoded 10-key ReadResponse (no
interceptors, no Tarantool, no value work), under the same h2load load as `make bench`'s
10-key Read at 64 clients.

    python -m bench.floor [--seconds 5] [--processes 1]

Whatever kv_svc does per call comes on top of this, so it bounds what any Python service
can reach here, whatever the limit of Tarantool is.

`measure(..., tarantool=access)` is the second floor (issue 16): the same servers also make
the one round trip kv_svc makes per Read — `tkv.kv_read` of the 10 keys over asynctnt, as
kv_svc's user, one connection per process — and still answer the fixed response. What
kv_svc spends beyond that is its own code: checks, token, errors, logs, metrics, the
answer built from the rows.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time

import grpc
import uvloop

from bench import loadgen
from bench.cpu import cpu_seconds
from tests.stack import free_port, wait_for_port

KEYS = [f"read-10-{i}" for i in range(1, 11)]


def serve(port: int, tarantool: dict | None = None) -> None:
    answer = loadgen.struct_message(KEYS, loadgen.value_bytes())

    async def main() -> None:
        async def read(request: bytes, context) -> bytes:
            return answer

        if tarantool:
            import asynctnt

            connection = asynctnt.Connection(
                host=tarantool["host"],
                port=tarantool["port"],
                username=tarantool["user"],
                password=tarantool["password"],
                fetch_schema=False,
                auto_refetch_schema=False,
            )
            await connection.connect()
            args = [*tarantool["token_args"], KEYS, loadgen.MAX_RESPONSE_BYTES, True]  # as kv_svc calls it

            async def read(request: bytes, context) -> bytes:  # this variant's
                result = await connection.call("tkv.kv_read", args)
                if result.body[0] != "ok":
                    raise RuntimeError(f"tkv.kv_read answered {result.body[0]}")
                return answer

        server = grpc.aio.server(options=[("grpc.so_reuseport", 1)])
        handler = grpc.unary_unary_rpc_method_handler(read)  # bytes in, bytes out
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("tkv.kv.v1.KeyValueService", {"Read": handler}),)
        )
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        await server.wait_for_termination()

    uvloop.run(main())


def measure(processes: int, seconds: float, tarantool: dict | None = None) -> dict:
    """calls/s and CPU of `processes` trivial servers under h2load (64 streams); with
    `tarantool` (bench/run.py tarantool_access), each call also reads the 10 keys there."""
    from tkv.kv.v1 import kv_pb2

    port = free_port()
    context = multiprocessing.get_context("spawn")
    servers = [context.Process(target=serve, args=(port, tarantool), daemon=True) for _ in range(processes)]
    for server in servers:
        server.start()
    try:
        wait_for_port(port)
        message = kv_pb2.ReadRequest(keys=KEYS).SerializeToString()
        loadgen.h2load(port, "/tkv.kv.v1.KeyValueService/Read", message, "unused", 64, 1)  # warm-up
        pids = [server.pid for server in servers]
        before, started = cpu_seconds(pids), time.monotonic()
        result = loadgen.h2load(port, "/tkv.kv.v1.KeyValueService/Read", message, "unused", 64, seconds)
        wall = time.monotonic() - started
        cpu = cpu_seconds(pids) - before
        # The same servers at half of what they just served, open loop (bench/run.py
        # run_open_loop does this to kv_svc): the latency this machine allows at half load.
        rate = len(result["latencies"]) / seconds / 2
        half = loadgen.h2load_open_loop(port, "/tkv.kv.v1.KeyValueService/Read", message, "unused", rate, 5)
    finally:
        for server in servers:
            server.terminate()
    calls = len(result["latencies"])
    if result["http_errors"] or not calls:
        raise RuntimeError(f"floor server failed: {result['http_errors']} HTTP errors, {calls} calls")
    return {
        "tarantool_round_trip": bool(tarantool),
        "processes": processes,
        "rps": round(calls / seconds, 1),
        "cpu_cores": round(cpu / wall, 2),
        "cpu_us_per_call": round(cpu / calls * 1e6, 1),
        "open_loop_at_half": {
            "offered_rps": round(rate, 1),
            "achieved_rps": round(len(half["latencies"]) / half["seconds"], 1),
            "p50_ms": round(1000 * statistics.median(half["latencies"]), 3),
            "p99_ms": round(1000 * loadgen.percentile(sorted(half["latencies"]), 0.99), 3),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--processes", type=int, default=1)
    args = parser.parse_args()
    floor = measure(args.processes, args.seconds)
    print(
        f"trivial grpc.aio server, {args.processes} process(es), 10-key Read, 64 streams: "
        f"{floor['rps']:.0f} calls/s, {floor['cpu_cores']} cores ({floor['cpu_us_per_call']:.0f} µs of CPU per call)"
    )


if __name__ == "__main__":
    main()
