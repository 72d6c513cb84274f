"""The write path's Python per value, measured on kv_svc's own request checks (issue 16):
SharedStoreRules.write (v1 Write) and NamespacedRules.put (v2 BatchPutPairs) with a storage
that answers at once, so that only validation and the stored form are timed. One of the
two places bench imports kv_svc (with observability.py's publish cost): a few µs per value
are lost in a gRPC call's noise, so they are timed on the rules themselves.

    python -m bench.write_path            # µs per value, then the profile of v1's loop

The values are bench/loadgen.py's ~100-byte JSON object and a ~1 KB one (a list of
objects), the shapes make bench writes; what the checks must still refuse is in
tests/unit/test_values.py.
"""

from __future__ import annotations

import asyncio
import cProfile
import io
import pstats
import time
from functools import partial

from google.protobuf import json_format, struct_pb2

from bench.loadgen import VALUE
from kv_svc.config import Limits, V2Limits
from kv_svc.rules_v1 import RawPair, SharedStoreRules
from kv_svc.rules_v2 import NamespacedRules, PutItem
from tkv_common.tokens import Claims

LIMITS = Limits(max_batch_keys=1000, max_key_bytes=1024, max_value_depth=32)
V2 = V2Limits(min_ttl_seconds=1, max_ttl_seconds=3600, default_page_size=100, max_page_size=1000)
LARGE_VALUE = {"items": [dict(VALUE, index=i) for i in range(8)]}


class _NoStorage:
    """Answers every write at once: what is left is kv_svc's own work."""

    async def write(self, claims, pairs):
        return []

    async def put(self, claims, namespace, stored):
        return None


def encoded(native) -> bytes:
    value = struct_pb2.Value()
    json_format.ParseDict(native, value)
    return value.SerializeToString()


def _per_value_us(call, batch: int, seconds: float = 1.0) -> float:
    loop = asyncio.new_event_loop()
    try:
        count, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            loop.run_until_complete(call())
            count += 1
        return (time.perf_counter() - started) / (count * batch) * 1e6
    finally:
        loop.close()


def measure(batch: int = 100) -> dict[str, float]:
    claims = Claims(subject="bench", token_id="t", issued_at=0, expires_at=0, account_id="a", token_epoch=0)
    v1 = SharedStoreRules(_NoStorage(), LIMITS)
    v2 = NamespacedRules(_NoStorage(), LIMITS, V2, page_tokens=None, watches=None)
    results = {}
    for name, native in (("100 B", VALUE), ("1 KB", LARGE_VALUE)):
        raw = encoded(native)
        v1_pairs = [RawPair(f"key-{i:06d}".encode(), raw) for i in range(batch)]
        v2_items = [PutItem(f"key-{i:06d}", raw, None, None) for i in range(batch)]
        results[f"v1 write, {name} value ({len(raw)} B)"] = _per_value_us(partial(v1.write, claims, v1_pairs), batch)
        results[f"v2 put, {name} value ({len(raw)} B)"] = _per_value_us(partial(v2.put, claims, "me", v2_items), batch)
    return results


def profile(batch: int = 100, rounds: int = 300) -> str:
    claims = Claims(subject="bench", token_id="t", issued_at=0, expires_at=0, account_id="a", token_epoch=0)
    v1 = SharedStoreRules(_NoStorage(), LIMITS)
    pairs = [RawPair(f"key-{i:06d}".encode(), encoded(VALUE)) for i in range(batch)]
    loop = asyncio.new_event_loop()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(rounds):
        loop.run_until_complete(v1.write(claims, pairs))
    profiler.disable()
    loop.close()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(8)
    return out.getvalue()


def lines(measured: dict[str, float]) -> list[str]:
    return [
        "",
        "## The write path's checks (issue 16)",
        "",
        "Python per value of kv_svc's request checks and stored form, storage answering at once "
        "(`python -m bench.write_path`, which also prints the profile): "
        + "; ".join(f"{name} {us:.2f} µs" for name, us in measured.items())
        + ".",
        "",
    ]


def main() -> None:
    print("Python per value of the write path's checks (storage answering at once), µs:")
    for name, us in measure().items():
        print(f"  {name:36s} {us:6.2f}")
    print(profile())


if __name__ == "__main__":
    main()
