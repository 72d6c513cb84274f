"""The v2 rules (docs/api.md, "v2"): namespaces, conditional writes, expiry and pages,
between the v2 servicer (servicer_v2.py) and storage (storage.py).

What can be checked on the request alone is checked here, every violation at once, before
storage is touched. What a concurrent request could change (namespace access, ownership in
`shared`, versions, quotas, storage full) is checked by the stored function in the same
transaction as the write (tarantool/tkv/kv.lua).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from tkv_common.errors import FieldViolation, InvalidArgument, NotFound, with_detail
from tkv_common.tokens import Claims

from . import messages, values
from .config import Limits, V2Limits
from .keys import KeyRules, key_excerpt, list_keys
from .names import namespace_violations
from .paging import InvalidPageToken, Listing, PageTokens
from .storage import NO_CONDITION, NO_EXPIRY, Deleted, Found, Page, Row, TarantoolAdapter, Written
from .watching import WatchHub


@dataclass(frozen=True)
class PutItem:
    key: str
    value: bytes  # an encoded google.protobuf.Value, unchecked
    expected_version: int | None
    ttl_seconds: float | None


@dataclass(frozen=True)
class DeleteItem:
    key: str
    expected_version: int | None


@dataclass(frozen=True)
class Listed:
    page: Page
    next_page_token: str


def _condition(expected_version: int | None) -> int:
    return NO_CONDITION if expected_version is None else expected_version


class NamespacedRules:
    """The v2 calls on pairs: each request checked whole, then one storage call."""

    def __init__(
        self, storage: TarantoolAdapter, limits: Limits, v2: V2Limits, page_tokens: PageTokens, watches: WatchHub
    ):
        self._storage = storage
        self._watches = watches
        self._limits = limits
        self._v2 = v2
        self._rules = KeyRules(limits)
        self._page_tokens = page_tokens

    # Request checks -------------------------------------------------------------------

    def _key_violations(self, field: str, key: str) -> list[FieldViolation]:
        problem = self._rules.key_violation(key, field)
        return [FieldViolation(field, problem)] if problem else []

    def _batch_violations(self, field: str, keys: Sequence[str]) -> list[FieldViolation]:
        violations = self._rules.batch_violations(field, len(keys))
        if not violations:
            for i, key in enumerate(keys):
                violations += self._key_violations(f"{field}[{i}]", key)
            violations += self._rules.duplicates(field, keys)
        return violations

    # `prefix`: the field path up to the field's own name, with its dot ("pairs[2]."), or
    # "" for the request's own fields (PutPair, DeletePair).
    def _version_violations(self, prefix: str, key: str, expected: int | None) -> list[FieldViolation]:
        if expected is None or expected >= 0:
            return []
        text = messages.INVALID_EXPECTED_VERSION.format(key=key_excerpt(key), value=expected)
        return [FieldViolation(f"{prefix}expected_version", text)]

    def _ttl_violations(self, prefix: str, key: str, ttl: float | None) -> list[FieldViolation]:
        if ttl is None or self._v2.min_ttl_seconds <= ttl <= self._v2.max_ttl_seconds:
            return []
        text = messages.INVALID_TTL.format(
            key=key_excerpt(key), minimum=self._v2.min_ttl_seconds, maximum=self._v2.max_ttl_seconds
        )
        return [FieldViolation(f"{prefix}ttl", with_detail(text, f"got {ttl:g}"))]

    @staticmethod
    def _refuse(violations: list[FieldViolation], reason: str) -> None:
        if violations:
            raise InvalidArgument.from_violations(violations, reason=reason)

    # Calls ----------------------------------------------------------------------------

    async def get(self, claims: Claims, namespace: str, key: str) -> Row:
        self._refuse(namespace_violations(namespace) + self._key_violations("key", key), "INVALID_KEYS")
        found = await self._storage.get(claims, namespace, [key])
        if not found.rows:
            raise NotFound(messages.ABSENT_KEYS.format(keys=list_keys([key_excerpt(key)])), reason="KEYS_NOT_FOUND")
        return found.rows[0]

    async def batch_get(self, claims: Claims, namespace: str, keys: Sequence[str]) -> Found:
        self._refuse(namespace_violations(namespace) + self._batch_violations("keys", keys), "INVALID_KEYS")
        return await self._storage.get(claims, namespace, list(keys))

    async def put(self, claims: Claims, namespace: str, items: Sequence[PutItem], *, single: bool = False) -> Written:
        """All of `items` or none. `single`: field paths of PutPair (no `pairs[i]`)."""
        batch = self._rules.batch_violations("pairs", len(items))
        violations = namespace_violations(namespace) + batch
        stored: list[list] = []
        if not batch:
            for i, item in enumerate(items):
                field = "" if single else f"pairs[{i}]"
                prefix = f"{field}." if field else ""
                problems = self._key_violations(f"{prefix}key", item.key)
                problems += self._version_violations(prefix, item.key, item.expected_version)
                problems += self._ttl_violations(prefix, item.key, item.ttl_seconds)
                try:
                    blob = values.check(item.value, self._limits.max_value_depth)
                except values.InvalidValue as exc:
                    text = messages.INCORRECT_VALUE.format(key=key_excerpt(item.key))
                    problems.append(FieldViolation(f"{prefix}value", with_detail(text, str(exc))))
                violations += problems
                if not problems:
                    stored.append([item.key, blob, _condition(item.expected_version), item.ttl_seconds or NO_EXPIRY])
            violations += self._rules.duplicates("pairs", [item.key for item in items])
        self._refuse(violations, "INVALID_PAIRS")
        return await self._storage.put(claims, namespace, stored)

    async def delete(
        self, claims: Claims, namespace: str, items: Sequence[DeleteItem], *, single: bool = False
    ) -> Deleted:
        """All named pairs that exist, or none. `single`: DeletePair, NOT_FOUND if absent."""
        violations = namespace_violations(namespace)
        if single:
            [item] = items
            violations += self._key_violations("key", item.key)
            violations += self._version_violations("", item.key, item.expected_version)
        else:
            violations += self._batch_violations("pairs", [item.key for item in items])
            for i, item in enumerate(items):
                violations += self._version_violations(f"pairs[{i}].", item.key, item.expected_version)
        self._refuse(violations, "INVALID_KEYS")
        stored = [[item.key, _condition(item.expected_version)] for item in items]
        deleted = await self._storage.delete(claims, namespace, stored)
        if single and deleted.missing_keys:
            keys = list_keys([key_excerpt(key) for key in deleted.missing_keys])
            raise NotFound(messages.ABSENT_KEYS.format(keys=keys), reason="KEYS_NOT_FOUND")
        return deleted

    async def list(
        self, claims: Claims, namespace: str, prefix: str, page_size: int, page_token: str, keys_only: bool
    ) -> Listed:
        violations = namespace_violations(namespace)
        if prefix:
            violations += self._key_violations("prefix", prefix)
        if page_size < 0:
            violations.append(FieldViolation("page_size", messages.INVALID_PAGE_SIZE.format(value=page_size)))
        listing = Listing(namespace.lower(), prefix, keys_only)
        after = None
        if page_token:
            try:
                after = self._page_tokens.last_key(page_token, listing)
            except (InvalidPageToken, ValueError, TypeError) as exc:
                violations.append(FieldViolation("page_token", with_detail(messages.INVALID_PAGE_TOKEN, str(exc))))
        self._refuse(violations, "INVALID_ARGUMENT")
        limit = min(page_size or self._v2.default_page_size, self._v2.max_page_size)
        page = await self._storage.list(claims, namespace, prefix, after, limit, keys_only)
        token = self._page_tokens.issue(listing, page.rows[-1][1]) if page.more and page.rows else ""
        return Listed(page, token)

    def watch(
        self, claims: Claims, namespace: str, prefix: str, key: str | None, start_revision: int, keys_only: bool
    ) -> AsyncIterator[bytes]:
        """The encoded messages of a watch on `key`, or else on the keys under `prefix`."""
        violations = namespace_violations(namespace)
        if key is not None:
            violations += self._key_violations("key", key)
        elif prefix:
            violations += self._key_violations("prefix", prefix)
        if start_revision < 0:
            text = messages.INVALID_START_REVISION.format(value=start_revision)
            violations.append(FieldViolation("start_revision", text))
        self._refuse(violations, "INVALID_ARGUMENT")
        return self._watches.open(claims, namespace, prefix, key, start_revision, keys_only)
