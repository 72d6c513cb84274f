"""The value path, measured: native MessagePack (what tkv stores) against encoded
google.protobuf.Value bytes, for the Python work of one request of 100 keys with ~100-byte
JSON objects. Tarantool's work is the same either way (it stores and returns opaque fields).

    python -m bench.values
"""

from __future__ import annotations

import json
import timeit

from google.protobuf import struct_pb2

from bench.loadgen import VALUE
from kv_svc import values
from tkv.kv.v1 import kv_pb2

KEYS = [f"key-{i}" for i in range(100)]


def encoded_value() -> bytes:
    value = struct_pb2.Value()
    values.fill(value, VALUE)
    return value.SerializeToString()


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field, by hand."""
    size, varint = len(payload), bytearray()
    while True:
        byte, size = size & 0x7F, size >> 7
        varint.append(byte | (0x80 if size else 0))
        if not size:
            break
    return bytes([number << 3 | 2]) + bytes(varint) + payload


def read_msgpack_path(stored: list) -> bytes:
    """Today: asynctnt hands us Python objects; fill() builds each Value node by node."""
    response = kv_pb2.ReadResponse()
    fields = response.data.fields
    for key, native in zip(KEYS, stored, strict=True):
        values.fill(fields[key], native)
    return response.SerializeToString()


def read_bytes_path(stored: list[bytes]) -> bytes:
    """Alternative: stored Value bytes spliced into map entries, no per-node work."""
    entries = b"".join(field(1, field(1, key.encode()) + field(2, raw)) for key, raw in zip(KEYS, stored, strict=True))
    return field(1, entries)


def write_msgpack_path(raw_values: list[bytes]) -> list:
    """Today: parse each Value, check depth and numbers, convert to Python for MessagePack."""
    return [values.decode(raw, 32) for raw in raw_values]


def write_bytes_path(raw_values: list[bytes]) -> list[bytes]:
    """Alternative: still parse each Value to check it (depth, NaN), then keep the bytes."""
    for raw in raw_values:
        values.decode(raw, 32)
    return raw_values


def main() -> None:
    raw = [encoded_value()] * len(KEYS)
    native = [json.loads(json.dumps(VALUE))] * len(KEYS)
    assert kv_pb2.ReadResponse.FromString(read_bytes_path(raw)) == kv_pb2.ReadResponse.FromString(
        read_msgpack_path(native)
    )
    runs = 2000
    results = {
        "read, MessagePack -> Value (today)": timeit.timeit(lambda: read_msgpack_path(native), number=runs),
        "read, stored Value bytes spliced": timeit.timeit(lambda: read_bytes_path(raw), number=runs),
        "write, Value -> checked -> Python (today)": timeit.timeit(lambda: write_msgpack_path(raw), number=runs),
        "write, Value checked, bytes kept": timeit.timeit(lambda: write_bytes_path(raw), number=runs),
    }
    print("Python work per request of 100 keys (~100-byte JSON objects):")
    for name, seconds in results.items():
        print(f"  {name:45s} {seconds / runs * 1e6:8.1f} µs")


if __name__ == "__main__":
    main()
