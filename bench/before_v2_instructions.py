"""Instructions per v1 call, this tree against the tree before the v2 API (issue 11), counted
by valgrind's callgrind: the same question as bench/before_v2.py without this VM's drift
(its paired runs' A/A control strays by ±15 %).

    python -m bench.before_v2_instructions [--calls 200]

Both trees' stacks start as bench/before_v2.py starts them (one worker each), Tarantool
under callgrind (all its threads: a `tarantool` first in PATH runs the real one under
valgrind). For each of 10- and 100-key Read and Write: kv_svc's count (a second kv_svc of
the tree under callgrind on the same Tarantool, as bench/instructions.py counts it), then
Tarantool's (calls through the stack's own kv_svc). Each is `calls` and then twice as many
sequential calls, the difference over `calls`, idle instructions subtracted at their
measured rate. Prints one JSON object. Not part of `make bench` (about 5 minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc

from bench import before_v2, loadgen
from bench.instructions import _Callgrind, kv_svc_under_callgrind
from tkv.kv.v1 import kv_pb2

READ, WRITE = "/tkv.kv.v1.KeyValueService/Read", "/tkv.kv.v1.KeyValueService/Write"
IDLE_SECONDS = 10.0


def _same(message: bytes) -> Iterator[bytes]:
    while True:
        yield message


def _read(batch: int) -> Iterator[bytes]:
    return _same(kv_pb2.ReadRequest(keys=[f"read-{batch}-{i}" for i in range(1, batch + 1)]).SerializeToString())


# Each call: its method and its requests (writes need new keys every time).
CALLS: dict[str, tuple[str, Callable[[], Iterator[bytes]]]] = {
    "10-key read": (READ, lambda: _read(10)),
    "100-key read": (READ, lambda: _read(100)),
    "10-key write": (WRITE, lambda: loadgen.write_requests(10, "v1")),
    "100-key write": (WRITE, lambda: loadgen.write_requests(100, "v1")),
}


async def _send(port: int, token: str, method: str, requests: Iterator[bytes], count: int) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        for _ in range(count):
            await call(next(requests), metadata=[("authorization", f"Bearer {token}")], timeout=120)


def _per_call(counter: _Callgrind, port: int, token: str, calls: int) -> dict[str, int]:
    """Instructions per call of each of CALLS, counted by `counter`, calls sent to `port`."""
    for method, requests in CALLS.values():
        asyncio.run(_send(port, token, method, requests(), 20))  # warm: code loaded, caches filled
    counter.zero()
    time.sleep(IDLE_SECONDS)
    idle_per_second = counter.dump() / IDLE_SECONDS
    counts = {}
    for name, (method, requests) in CALLS.items():
        totals = []
        for count in (calls, 2 * calls):
            counter.zero()
            started = time.monotonic()
            asyncio.run(_send(port, token, method, requests(), count))
            totals.append(counter.dump() - idle_per_second * (time.monotonic() - started))
        counts[name] = round((totals[1] - totals[0]) / calls)
    return counts


def _kv_svc_counts(stack: before_v2.TreeStack, tree: Path, directory: Path, calls: int) -> dict[str, int]:
    """A second kv_svc of `tree` under callgrind, with the environment of the stack's own."""
    environ = Path(f"/proc/{stack.pids['kv_svc']}/environ").read_bytes().split(b"\0")
    env = dict(item.decode().split("=", 1) for item in environ if b"=" in item)
    with kv_svc_under_callgrind(tree, env, directory / "callgrind.kv_svc") as (counter, port):
        return _per_call(counter, port, stack.token, calls)


class _Pid:
    """What _Callgrind needs of a process it did not start."""

    def __init__(self, pid: int):
        self.pid = pid


def measure(directory: Path, calls: int) -> dict:
    trees = {"before": before_v2.before_tree(directory), "now": before_v2.ROOT}
    result: dict = {"before": before_v2.BEFORE_V2, "calls": calls}
    for code, tree in trees.items():
        work = directory / code
        work.mkdir()
        wrapper = work / "bin" / "tarantool"
        wrapper.parent.mkdir()
        real = subprocess.run(["which", "tarantool"], capture_output=True, text=True, check=True).stdout.strip()
        out = work / "callgrind.tarantool"
        wrapper.write_text(
            "#!/bin/sh\n"
            f'exec valgrind --tool=callgrind --smc-check=all-non-file --callgrind-out-file={out}.%p {real} "$@"\n'
        )
        wrapper.chmod(0o755)
        env = {**os.environ, "PATH": f"{wrapper.parent}:{os.environ['PATH']}"}
        stack = before_v2.TreeStack(tree, work / "data", 1, env=env)
        try:
            result[code] = {
                "kv_svc": _kv_svc_counts(stack, tree, work, calls),
                "tarantool": _per_call(
                    _Callgrind(_Pid(stack.pids["tarantool"]), out), stack.kv_port, stack.token, calls
                ),
            }
        finally:
            stack.stop()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tkv-v1-instructions-") as directory:
        print(json.dumps(measure(Path(directory), args.calls)))


if __name__ == "__main__":
    main()
