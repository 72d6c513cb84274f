"""Key rules shared by Read and Write, and how keys are quoted in error messages."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence

from tkv_common.errors import FieldViolation, with_detail

from . import messages
from .config import Limits

# gRPC carries the status message in a trailer, and again inside grpc-status-details-bin
# (base64, so 4/3 of it); clients refuse trailers past 8 KiB. Lists of keys in messages
# are cut at this many bytes with "and N more", which keeps the whole under ~6 KiB.
MESSAGE_LIST_BUDGET = 2048


# Keys the original listed bare; any other is quoted as a JSON string so that the list
# stays unambiguous (a key may hold spaces, quotes or line breaks).
_BARE_KEY = re.compile(r'[^\s"\\\x00-\x1f\x7f]+')


def list_keys(keys: Iterable[str], budget: int = MESSAGE_LIST_BUDGET) -> str:
    """Keys separated by spaces, as the original wrote them (`key1 key2`), cut at `budget`
    bytes with "and N more"."""
    keys = list(keys)
    shown: list[str] = []
    used = 0
    for key in keys:
        text = key if _BARE_KEY.fullmatch(key) else json.dumps(key, ensure_ascii=False)
        if used + len(text.encode()) > budget and shown:
            return " ".join(shown) + f" and {len(keys) - len(shown)} more"
        shown.append(text)
        used += len(text.encode()) + 1
    return " ".join(shown)


def key_excerpt(key: str, limit: int = 40) -> str:
    """One key in a message about it, as list_keys shows keys: its first `limit`
    characters and "..." if it is longer (a message may name twenty such keys, and the
    status must stay within gRPC's trailer limit)."""
    return list_keys([key if len(key) <= limit else key[:limit] + "..."])


def _place(where: str | Callable[[], str]) -> str:
    return where() if callable(where) else where


class KeyRules:
    def __init__(self, limits: Limits):
        self._limits = limits

    def batch_violations(self, field: str, count: int) -> list[FieldViolation]:
        if count == 0:
            return [FieldViolation(field, messages.NO_KEYS)]
        if count > self._limits.max_batch_keys:
            limit = messages.TOO_MANY_KEYS.format(limit=self._limits.max_batch_keys)
            return [FieldViolation(field, with_detail(limit, f"got {count}"))]
        return []

    def key_violation(self, key: str, where: str | Callable[[], str]) -> str | None:
        """The text of the rule `key` breaks followed by `where` it is, or None. `where`
        may be a function giving it, for callers whose naming costs more than the check."""
        if not key:
            return with_detail(messages.EMPTY_KEY, _place(where))
        if "\x00" in key:
            # C clients, Lua patterns and many tools treat NUL as the end of a string.
            return with_detail(messages.KEY_WITH_NUL, _place(where))
        size = len(key.encode("utf-8"))
        if size > self._limits.max_key_bytes:
            text = messages.KEY_TOO_LONG.format(limit=self._limits.max_key_bytes)
            return with_detail(text, f"{_place(where)}: {size} bytes")
        return None

    def duplicates(self, field: str, keys: Sequence[str]) -> list[FieldViolation]:
        repeated = [key for key, count in Counter(keys).items() if count > 1]
        return [FieldViolation(field, messages.IDENTICAL_KEYS.format(keys=list_keys(repeated)))] if repeated else []
