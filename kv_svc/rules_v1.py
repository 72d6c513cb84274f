"""The v1 rules (docs/api.md, "v1"): batch Read and Write on the one shared store.
Validation first (nothing touches storage on bad input), then one storage call per request."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from tkv_common.errors import FieldViolation, InvalidArgument, ResourceExhausted, with_detail
from tkv_common.tokens import Claims

from . import messages, values
from .config import Limits
from .keys import KeyRules, key_excerpt
from .storage import TarantoolAdapter


@dataclass(frozen=True)
class RawPair:
    """A pair as received: key bytes and encoded google.protobuf.Value, unchecked."""

    key: bytes
    value: bytes


class SharedStoreRules:
    """v1's Read and Write: every key in the shared namespace."""

    def __init__(self, storage: TarantoolAdapter, limits: Limits):
        self._storage = storage
        self._limits = limits
        self._rules = KeyRules(limits)

    async def read(self, claims: Claims, keys: Sequence[str]) -> Sequence[Any]:
        """The stored values of `keys` in the same order (TarantoolAdapter.read); NotFound names
        every absent key."""
        violations = self._rules.batch_violations("keys", len(keys))
        if not violations:
            violations += [
                FieldViolation(f"keys[{i}]", problem)
                for i, key in enumerate(keys)
                if (problem := self._rules.key_violation(key, f"keys[{i}]"))
            ]
            violations += self._rules.duplicates("keys", keys)
        if violations:
            raise InvalidArgument.from_violations(violations, reason="INVALID_KEYS")
        try:
            return await self._storage.read(claims, list(keys))
        except ResourceExhausted as exc:
            if exc.reason != "RESPONSE_TOO_LARGE":
                raise
            # v1 has always said this with INVALID_ARGUMENT (HTTP 400): the same request
            # will never fit, retrying is no use.
            raise too_large(int(exc.metadata["size"]), int(exc.metadata["limit"])) from None

    async def write(self, claims: Claims, raw_pairs: Sequence[RawPair]) -> list[str]:
        """Inserts the pairs whose keys are new; returns the skipped keys in request order."""
        violations = self._rules.batch_violations("data", len(raw_pairs))
        pairs: list[list[Any]] = []
        if not violations:
            keys: list[str] = []
            for i, raw in enumerate(raw_pairs):
                try:
                    key = raw.key.decode("utf-8")
                except UnicodeDecodeError:
                    violations.append(FieldViolation(f"data[{i}]", with_detail(messages.KEY_NOT_UTF8, f"data[{i}]")))
                    continue
                keys.append(key)
                # Names of the key and its field are made only for a violation: on a valid
                # batch they were a fifth of the write path's Python (bench/write_path.py).
                if problem := self._rules.key_violation(key, partial(_key_place, key)):
                    violations.append(FieldViolation(_entry_field(key, i), problem))
                    continue
                try:
                    pairs.append([key, values.check(raw.value, self._limits.max_value_depth)])
                except values.InvalidValue as exc:
                    text = messages.INCORRECT_VALUE.format(key=key_excerpt(key))
                    violations.append(FieldViolation(_entry_field(key, i), with_detail(text, str(exc))))
            violations += self._rules.duplicates("data", keys)
        if violations:
            raise InvalidArgument.from_violations(violations, reason="INVALID_PAIRS")
        return await self._storage.write(claims, pairs)


def _key_place(key: str) -> str:
    return f"key {key_excerpt(key)}"


def _entry_field(key: str, position: int) -> str:
    """The path of a `data` map entry in a violation; by position for a key too long to
    repeat whole."""
    return f"data[{json.dumps(key, ensure_ascii=False) if len(key) <= 64 else position}]"


def too_large(size: int, limit: int) -> InvalidArgument:
    """v1's refusal of an answer over the response limit."""
    return InvalidArgument(messages.ANSWER_TOO_LARGE.format(size=size, limit=limit), reason="RESPONSE_TOO_LARGE")


def write_status(skipped: Sequence[str]) -> str:
    """The status sentence of the original HTTP API, kept word for word: every skipped key,
    as it is, separated by spaces (a success body has no trailer limit to respect)."""
    return messages.SKIPPED_KEYS.format(keys=" ".join(skipped)) if skipped else "success"
