"""The value path, measured: storing native MessagePack against storing the encoded
google.protobuf.Value bytes (what kv_svc does), for the Python work of one request of
100 keys with ~100-byte JSON objects.

    python -m bench.values

Read: stored Value bytes are spliced into the answer; native MessagePack is converted
node by node (`values.fill`), which is also what kv_svc still does for values stored
natively by earlier versions or other tools. Write: both parse and check each Value; the
native path then converts it to Python objects for MessagePack.
"""

from __future__ import annotations

import json
import math
import timeit

import msgpack
from google.protobuf import struct_pb2

from bench.loadgen import VALUE
from kv_svc import values
from tkv.kv.v1 import kv_pb2

KEYS = [f"key-{i}" for i in range(100)]


def _to_native(value: struct_pb2.Value):
    """The conversion the native-MessagePack design needs on every write."""
    kind = value.WhichOneof("kind")
    if kind == "struct_value":
        return {key: _to_native(item) for key, item in value.struct_value.fields.items()}
    if kind == "list_value":
        return [_to_native(item) for item in value.list_value.values]
    if kind == "null_value":
        return None
    if kind == "number_value" and not math.isfinite(value.number_value):
        raise ValueError
    return getattr(value, kind)


def json_answer(keys: list[str], stored: list[bytes]) -> bytes:
    """The JSON body of a v1 Read answer made in Python, as HTTP routes answering
    google.api.HttpBody would need (issue 16): each stored Value parsed and walked to
    native objects, then one json.dumps. Envoy's transcoder does this work today."""
    data = {key: _to_native(struct_pb2.Value.FromString(raw)) for key, raw in zip(keys, stored, strict=True)}
    return json.dumps({"data": data}, ensure_ascii=False, separators=(",", ":")).encode()


def write_native(raw_values: list[bytes]) -> list:
    return [_to_native(struct_pb2.Value.FromString(values.check(raw, 32))) for raw in raw_values]


def write_bytes(raw_values: list[bytes]) -> list[bytes]:
    return [values.check(raw, 32) for raw in raw_values]


def main() -> None:
    raw = values.native_to_bytes(json.loads(json.dumps(VALUE)))
    # The stored values a v1 Read gets (kv_svc/storage.py TarantoolAdapter.read).
    native_values = [json.loads(json.dumps(VALUE)) for _ in KEYS]
    bytes_values = [raw for _ in KEYS]
    # The MessagePack a Read answer carries from Tarantool, decoded by the client.
    native_wire, bytes_wire = msgpack.packb(native_values), msgpack.packb(bytes_values)
    assert kv_pb2.ReadResponse.FromString(values.read_response(KEYS, bytes_values)) == kv_pb2.ReadResponse.FromString(
        values.read_response(KEYS, native_values)
    )
    runs = 2000
    results = {
        "read: MessagePack decode, native values": lambda: msgpack.unpackb(native_wire),
        "read: MessagePack decode, Value bytes": lambda: msgpack.unpackb(bytes_wire),
        "read: answer from native values (fill)": lambda: values.read_response(KEYS, native_values),
        "read: answer spliced from Value bytes": lambda: values.read_response(KEYS, bytes_values),
        "read: JSON body made in Python (HttpBody)": lambda: json_answer(KEYS, bytes_values),
        "write: check, convert to native": lambda: write_native([raw] * len(KEYS)),
        "write: check, keep bytes": lambda: write_bytes([raw] * len(KEYS)),
    }
    print("Python work per request of 100 keys (~100-byte JSON objects), µs:")
    for name, run in results.items():
        print(f"  {name:42s} {timeit.timeit(run, number=runs) / runs * 1e6:8.1f}")
    print(f"stored size per value: native MessagePack {len(msgpack.packb(VALUE))} B, Value bytes {len(raw)} B")


if __name__ == "__main__":
    main()
