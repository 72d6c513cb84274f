"""Instructions per call, counted by valgrind's callgrind: a measure of cost that this VM's
drifting speed cannot move (issue 15's observability cost).

Paired runs of two kv_svc trees under load stray by ±5-10 % per run, even against
themselves (bench/observability.py's A/A control), so a cost of 2-3 % cannot be told from
noise that way. Instructions can: one kv_svc process (TKV_WORKERS=1) runs under callgrind,
a client makes N sequential 10-key Reads, then 2N, and the difference of the two counts
over N is the cost of one call, start-up and warm-up excluded. Repeated runs agreed to
~0.2 % (682.2k / 681.8k, 727.3k / 726.0k). What runs on a timer rather than per call (the
metrics publisher, the storage-figures poll) is left out: metrics are off in both trees,
and instructions counted over 10 idle seconds are subtracted at the same rate (the
publisher's own cost is timed natively, bench/observability.py python_cost).

Instructions are not time (an instruction of the JSON encoder and one of a cache miss cost
differently), but for two versions of the same Python code path they track CPU closely.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc

from tests.stack import Stack, free_port, wait_for_port
from tkv.kv.v1 import kv_pb2

CALLS = 200
IDLE_SECONDS = 10.0
METHOD = "/tkv.kv.v1.KeyValueService/Read"


async def _calls(port: int, token: str, count: int) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        read = channel.unary_unary(METHOD, request_serializer=None, response_deserializer=None)
        message = kv_pb2.ReadRequest(keys=[f"read-10-{i}" for i in range(1, 11)]).SerializeToString()
        for _ in range(count):
            await read(message, metadata=[("authorization", f"Bearer {token}")], timeout=120)


class _Callgrind:
    """A process under callgrind whose counters are zeroed and dumped on demand."""

    def __init__(self, process: subprocess.Popen, out: Path):
        self.process, self.out = process, out

    def _control(self, flag: str) -> None:
        subprocess.run(["callgrind_control", flag, str(self.process.pid)], capture_output=True, check=True)

    def zero(self) -> None:
        self._control("-z")

    def dump(self) -> int:
        """Instructions since the last zero."""
        before = set(self.out.parent.glob(self.out.name + "*"))
        self._control("-d")
        for _ in range(100):
            new = sorted(set(self.out.parent.glob(self.out.name + "*")) - before)
            total = re.search(r"^totals: (\d+)", new[-1].read_text(), re.M) if new else None
            if total:  # the last line: the dump is complete
                return int(total.group(1))
            time.sleep(0.2)
        raise RuntimeError("callgrind wrote no dump")


@contextlib.contextmanager
def kv_svc_under_callgrind(tree: Path, env: dict[str, str], out: Path) -> Iterator[tuple[_Callgrind, int]]:
    """One kv_svc process of `tree` (TKV_WORKERS=1, metrics off) under callgrind, with
    `env` for the rest of its settings: its counter and its port."""
    port = free_port()
    env = {
        **env,
        "TKV_KV_LISTEN": f"127.0.0.1:{port}",
        "TKV_WORKER_SOCKET_DIR": "",
        "TKV_WORKERS": "1",
        "TKV_KV_METRICS_LISTEN": "off",
        # Callgrind runs the process tens of times slower: the first calls (connecting,
        # loading code) passed the 2 s defaults on a busy machine and came back UNAVAILABLE.
        # Only the wait changes, not the code path counted.
        "TKV_TARANTOOL_CALL_TIMEOUT": "60",
        "TKV_TARANTOOL_CONNECT_TIMEOUT": "60",
    }
    process = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}.%p", sys.executable, "-m", "kv_svc"],
        cwd=tree,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process=process, timeout=300)
        yield _Callgrind(process, out), port
    finally:
        process.terminate()
        process.wait(timeout=120)


def per_call(stack: Stack, token: str, tree: Path, directory: Path, name: str, calls: int = CALLS) -> dict:
    """Instructions per 10-key Read of kv_svc from `tree` (its own data: the stack's
    Tarantool, preloaded by bench/run.py prepare)."""
    with kv_svc_under_callgrind(tree, stack.env, directory / f"callgrind.{name}") as (counter, port):
        asyncio.run(_calls(port, token, 20))  # warm: first calls load code and caches
        counter.zero()
        time.sleep(IDLE_SECONDS)
        idle_per_second = counter.dump() / IDLE_SECONDS
        totals = []
        for count in (calls, 2 * calls):
            counter.zero()
            started = time.monotonic()
            asyncio.run(_calls(port, token, count))
            totals.append(counter.dump() - idle_per_second * (time.monotonic() - started))
    return {
        "instructions_per_call": round((totals[1] - totals[0]) / calls),
        "idle_instructions_per_second": round(idle_per_second),
        "calls": calls,
    }
