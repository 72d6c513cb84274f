"""Key rules shared by Read and Write, and how keys are quoted in error messages."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence

from tkv_common.errors import FieldViolation

from .config import Limits

# gRPC carries the status message in a trailer, and again inside grpc-status-details-bin
# (base64, so 4/3 of it); clients refuse trailers past 8 KiB. Lists of keys in messages
# are cut at this many bytes with "and N more", which keeps the whole under ~6 KiB.
MESSAGE_LIST_BUDGET = 2048


def quote_keys(keys: Iterable[str], budget: int = MESSAGE_LIST_BUDGET) -> str:
    """Keys as JSON strings (unambiguous whatever they contain), cut at `budget` bytes."""
    keys = list(keys)
    shown: list[str] = []
    used = 0
    for key in keys:
        quoted = json.dumps(key, ensure_ascii=False)
        if used + len(quoted) > budget and shown:
            return ", ".join(shown) + f" and {len(keys) - len(shown)} more"
        shown.append(quoted)
        used += len(quoted) + 2
    return ", ".join(shown)


class KeyRules:
    def __init__(self, limits: Limits):
        self._limits = limits

    def batch_violations(self, field: str, count: int) -> list[FieldViolation]:
        if count == 0:
            return [FieldViolation(field, "must hold at least one key")]
        if count > self._limits.max_batch_keys:
            return [FieldViolation(field, f"holds {count} keys; at most {self._limits.max_batch_keys} per request")]
        return []

    def key_violation(self, key: str) -> str | None:
        if not key:
            return "key must not be empty"
        if "\x00" in key:
            # C clients, Lua patterns and many tools treat NUL as the end of a string.
            return "key must not contain NUL (U+0000)"
        size = len(key.encode("utf-8"))
        if size > self._limits.max_key_bytes:
            return f"key is {size} bytes of UTF-8; at most {self._limits.max_key_bytes}"
        return None

    def duplicates(self, field: str, keys: Sequence[str]) -> list[FieldViolation]:
        repeated = [key for key, count in Counter(keys).items() if count > 1]
        return [FieldViolation(field, f"duplicate keys: {quote_keys(repeated)}")] if repeated else []
