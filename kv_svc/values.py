"""Values between the wire and Tarantool.

kv stores each value as the encoded google.protobuf.Value a client sent (checked, then
re-encoded without unknown fields), as MessagePack binary. A Read answer is then spliced
from stored bytes with no per-node work: for 100 ~100-byte JSON objects, 37 µs instead of
519 µs converting native MessagePack node by node (the measurement and the trade-off are in
docs/benchmarks/README.md). Values stored as native MessagePack (by
earlier versions of kv_svc, or by other tools) are still read, converted by `fill`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

from google.protobuf import struct_pb2
from google.protobuf.message import DecodeError


class InvalidValue(ValueError):
    """Why a value cannot be stored; the message is shown to the client."""


def check(raw: bytes, max_depth: int) -> bytes:
    """Encoded google.protobuf.Value from a client -> the bytes to store, or InvalidValue."""
    try:
        value = struct_pb2.Value.FromString(raw)
    except DecodeError:
        raise InvalidValue(
            f"it is not a valid google.protobuf.Value or is nested deeper than {max_depth} levels"
        ) from None
    # Unknown fields would be stored and handed to every reader; drop them.
    value.DiscardUnknownFields()
    stored = value.SerializeToString()
    if not _may_break_rules(stored, max_depth):
        return stored
    _check(value, max_depth, 0)
    return stored


def _may_break_rules(stored: bytes, max_depth: int) -> bool:
    """False when the canonical encoding proves the value keeps every rule of _check, by
    byte searches that run in C: walking the message in Python cost ~0.5 µs a node, most of
    a write's Python (bench/write_path.py). True sends the value to the walk, which finds
    the actual problem (or none: each test below can be passed by harmless bytes).

    Why each test suffices, for protobuf's canonical encoding (what SerializeToString writes):
    - no kind: a Value with a kind encodes to 2 bytes or more, one without to none; nested
      in a list (field 1 of ListValue) or as a map entry's value (field 2) that is the
      field's tag followed by a zero length, b"\x0a\x00" or b"\x12\x00" (the map entry's
      value field is always written, even empty).
    - NaN and ±Infinity: their exponent bits are all ones, so the last of the double's 8
      little-endian bytes is 0x7f or 0xff.
    - depth: every object or array is a Value whose tag byte is 0x2a (struct_value) or
      0x32 (list_value), and each of max_depth + 1 nested containers adds at least 4 bytes
      (the innermost 2): a shorter encoding, or one with no more than max_depth such
      bytes, cannot nest too deep.
    """
    if not stored or b"\x0a\x00" in stored or b"\x12\x00" in stored:
        return True
    if b"\x7f" in stored or b"\xff" in stored:
        return True
    if len(stored) < 4 * max_depth + 2:
        return False
    return stored.count(b"\x2a") + stored.count(b"\x32") > max_depth


def _check(value: struct_pb2.Value, max_depth: int, depth: int) -> None:
    """`depth` counts the objects/arrays enclosing `value`; more than max_depth fails."""
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        if not math.isfinite(value.number_value):
            raise InvalidValue("numbers must be finite (JSON has no NaN or Infinity)")
    elif kind == "struct_value" or kind == "list_value":
        if depth >= max_depth:
            raise InvalidValue(f"it is nested deeper than {max_depth} levels of objects/arrays")
        items = value.struct_value.fields.values() if kind == "struct_value" else value.list_value.values
        for item in items:
            _check(item, max_depth, depth + 1)
    elif kind is None:
        raise InvalidValue("it has no kind set (a google.protobuf.Value must hold one)")


def read_response(keys: Sequence[str], stored: Sequence[Any]) -> bytes:
    """Encoded tkv.kv.v1.ReadResponse for `keys` and their stored values in the same order
    (TarantoolAdapter.read): data (field 1, a Struct) holding one map entry (field 1) per key,
    each entry being key (field 1) and the encoded Value (field 2)."""
    entries = []
    for name, value in zip(keys, stored, strict=True):
        key = name.encode()
        if type(value) is not bytes:
            value = native_to_bytes(value)
        entry = b"\x0a" + varint(len(key)) + key + b"\x12" + varint(len(value)) + value
        entries.append(b"\x0a" + varint(len(entry)) + entry)
    data = b"".join(entries)
    return b"\x0a" + varint(len(data)) + data


_SMALL_SIZES = [bytes((n,)) for n in range(0x80)]


def varint(n: int) -> bytes:
    """A protobuf varint of a non-negative integer (a length, a version, a time)."""
    if n < 0x80:
        return _SMALL_SIZES[n]
    return _large_varint(n)


# Versions and the seconds of times repeat across the pairs of an answer (one write batch
# gives its pairs one version, written within the same second): a cached encoding costs a
# lookup instead of a loop.
@functools.lru_cache(maxsize=16384)
def _large_varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def native_to_bytes(native: Any) -> bytes:
    value = struct_pb2.Value()
    fill(value, native)
    return value.SerializeToString()


def fill(target: struct_pb2.Value, native: Any) -> None:
    """Write a plain Python value (native MessagePack) into `target` in place."""
    if native is None:
        target.null_value = struct_pb2.NULL_VALUE
    elif isinstance(native, bool):
        target.bool_value = native
    elif isinstance(native, (int, float)):
        target.number_value = native
    elif isinstance(native, str):
        target.string_value = native
    elif isinstance(native, dict):
        fields = target.struct_value.fields
        target.struct_value.SetInParent()  # an empty object must stay an object
        for key, item in native.items():
            fill(fields[key], item)
    elif isinstance(native, list):
        values = target.list_value.values
        target.list_value.SetInParent()  # an empty array must stay an array
        for item in native:
            fill(values.add(), item)
    else:
        raise TypeError(f"stored value of unsupported type {type(native).__name__}")
