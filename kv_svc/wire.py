"""Encoded tkv.kv.v2 answers, spliced from stored rows.

Values are stored as encoded google.protobuf.Value (kv_svc/values.py), so an answer is
built by concatenating bytes around them instead of parsing each value into a message and
serialising it again; tests/unit/test_wire.py checks every encoder against the generated
messages.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from .storage import CREATE_VERSION, EXPIRE_TIME, KEY, OWNER, UPDATE_TIME, VALUE, VERSION, Row
from .values import native_to_bytes, varint


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: its tag byte, the length, the bytes."""
    return tag + varint(len(payload)) + payload


def timestamp_parts(seconds_since_epoch: float) -> tuple[int, int]:
    """A stored time (Unix seconds, a double) as google.protobuf.Timestamp's seconds and
    nanos: the one conversion, so that every answer shows a time the same way."""
    seconds = math.floor(seconds_since_epoch)
    return seconds, min(round((seconds_since_epoch - seconds) * 1e9), 999_999_999)


def _timestamp(seconds_since_epoch: float) -> bytes:
    """An encoded google.protobuf.Timestamp: seconds (field 1), nanos (field 2)."""
    seconds, nanos = timestamp_parts(seconds_since_epoch)
    out = b"\x08" + varint(seconds) if seconds else b""
    return out + (b"\x10" + varint(nanos) if nanos else b"")


def pair(row: Row) -> bytes:
    """An encoded tkv.kv.v2.Pair; without `value` when the row has none (keys only)."""
    out = _field(b"\x0a", row[KEY].encode())
    value = row[VALUE]
    if value is not None:
        if type(value) is not bytes:
            value = native_to_bytes(value)
        out += _field(b"\x12", value)
    out += b"\x18" + varint(row[VERSION]) + b"\x20" + varint(row[CREATE_VERSION])
    if row[OWNER]:
        out += _field(b"\x2a", row[OWNER].encode())
    out += _field(b"\x32", _timestamp(row[UPDATE_TIME]))
    if row[EXPIRE_TIME]:
        out += _field(b"\x3a", _timestamp(row[EXPIRE_TIME]))
    return out


def pairs_and_keys(rows: Iterable[Row], keys: Iterable[str]) -> bytes:
    """An encoded BatchGetPairsResponse: pairs (field 1), missing_keys (field 2)."""
    out = b"".join(_field(b"\x0a", pair(row)) for row in rows)
    return out + b"".join(_field(b"\x12", key.encode()) for key in keys)


def page(rows: Iterable[Row], next_page_token: str, revision: int) -> bytes:
    """An encoded ListPairsResponse: pairs (1), next_page_token (2), revision (3)."""
    out = b"".join(_field(b"\x0a", pair(row)) for row in rows)
    if next_page_token:
        out += _field(b"\x12", next_page_token.encode())
    return out + (b"\x18" + varint(revision) if revision else b"")
