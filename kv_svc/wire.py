"""Encoded tkv.kv.v2 answers, spliced from stored rows.

Values are stored as encoded google.protobuf.Value (kv_svc/values.py), so an answer is
built by concatenating bytes around them instead of parsing each value into a message and
serialising it again; tests/unit/test_wire.py checks every encoder against the generated
messages.
"""

from __future__ import annotations

from collections.abc import Iterable

from .storage import CREATE_VERSION, EXPIRE_TIME, KEY, OWNER, UPDATE_TIME, VALUE, VERSION, Row
from .values import native_to_bytes, varint


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: its tag byte, the length, the bytes."""
    return tag + varint(len(payload)) + payload


def timestamp_parts(seconds_since_epoch: float) -> tuple[int, int]:
    """A stored time (Unix seconds, a double) as google.protobuf.Timestamp's seconds and
    nanos: the one conversion, so that every answer shows a time the same way."""
    # Stored times are after 1970: int() is floor, and +0.5 rounds (cheaper than both
    # math.floor and round on this hot path).
    seconds = int(seconds_since_epoch)
    nanos = int((seconds_since_epoch - seconds) * 1e9 + 0.5)
    return seconds, nanos if nanos < 1_000_000_000 else 999_999_999


def _timestamp(seconds_since_epoch: float) -> bytes:
    """An encoded google.protobuf.Timestamp: seconds (field 1), nanos (field 2)."""
    seconds, nanos = timestamp_parts(seconds_since_epoch)
    out = b"\x08" + varint(seconds) if seconds else b""
    return out + (b"\x10" + varint(nanos) if nanos else b"")


def pair(row: Row) -> bytes:
    """An encoded tkv.kv.v2.Pair; without `value` when the row has none (keys only).
    Parts joined once: the hot path of every read."""
    key = row[KEY].encode()
    parts = [b"\x0a", varint(len(key)), key]
    value = row[VALUE]
    if value is not None:
        if type(value) is not bytes:
            value = native_to_bytes(value)
        parts += (b"\x12", varint(len(value)), value)
    parts += (b"\x18", varint(row[VERSION]), b"\x20", varint(row[CREATE_VERSION]))
    owner = row[OWNER]
    if owner:
        owner = owner.encode()
        parts += (b"\x2a", varint(len(owner)), owner)
    update_time = _timestamp(row[UPDATE_TIME])
    parts += (b"\x32", varint(len(update_time)), update_time)
    if row[EXPIRE_TIME]:
        expire_time = _timestamp(row[EXPIRE_TIME])
        parts += (b"\x3a", varint(len(expire_time)), expire_time)
    return b"".join(parts)


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
