"""kv_svc's storage: one stored-function call per request (tarantool/tkv/api.lua, which
calls kv.lua, sharing.lua and watch_access.lua), and the one table that turns their outcomes into errors.

Each call carries the caller's token (Claims.storage_args); the stored function checks that
the token is not revoked and its account still exists, in the same round trip
(see docs/token-revocation.md). Rows of pairs come back as stored (`Row`), so that values
travel as the encoded bytes they are (kv_svc/wire.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from google.rpc import error_details_pb2

from tkv_common.errors import (
    Aborted,
    FieldViolation,
    InvalidArgument,
    NotFound,
    OutOfRange,
    PermissionDenied,
    ResourceExhausted,
    TkvError,
)
from tkv_common.tarantool import TarantoolClient
from tkv_common.tokens import TOKEN_PROBLEMS, Claims

from . import messages
from .config import Quotas
from .keys import key_excerpt, list_keys

# A stored pair as Tarantool returns it: [namespace, key, value, version, create_version,
# owner, update_time, expire_time, size] (tarantool/tkv/schema.lua v6). `value` is the
# encoded google.protobuf.Value (bytes), a native MessagePack value from before blobs,
# or None in keys-only lists.
Row = Sequence[Any]
KEY, VALUE, VERSION, CREATE_VERSION, OWNER, UPDATE_TIME, EXPIRE_TIME = range(1, 8)

# Condition and expiry as the stored functions take them (msgpack arrays hold no nil).
NO_CONDITION = -1
NO_EXPIRY = 0


def _mismatch(failures: list[list[Any]]) -> Aborted:
    violations = [
        error_details_pb2.PreconditionFailure.Violation(
            type="VERSION_MISMATCH", subject=key, description=f"current version {current} (0 = absent)"
        )
        for key, current in failures
    ]
    return Aborted(
        messages.VERSION_MISMATCH.format(keys=list_keys(key_excerpt(key) for key, _ in failures)),
        reason="VERSION_MISMATCH",
        details=[error_details_pb2.PreconditionFailure(violations=violations)],
    )


def _quota(owner: str, what: str, used: int, adding: int, limit: int) -> ResourceExhausted:
    unit = "pairs" if what == "pairs" else "bytes of keys and values"
    text = f"{used} {unit} stored, {adding} more would pass the limit of {limit}"
    violation = error_details_pb2.QuotaFailure.Violation(subject=f"user:{owner}", description=text)
    return ResourceExhausted(
        messages.QUOTA_EXCEEDED.format(owner=owner, what=text),
        reason="QUOTA_EXCEEDED",
        metadata={"quota": what},
        details=[error_details_pb2.QuotaFailure(violations=[violation])],
    )


def _compacted(revision: int, oldest: int) -> OutOfRange:
    return OutOfRange(
        messages.REVISION_COMPACTED.format(revision=revision, oldest=oldest, resume=oldest - 1),
        reason="REVISION_COMPACTED",
        metadata={"oldest_revision": str(oldest)},
    )


# The one translation of the stored functions' outcomes (tarantool/tkv/api.lua's kv_ exports).
STATUS_ERRORS: dict[str, Callable[..., TkvError]] = {
    **TOKEN_PROBLEMS,
    "missing": lambda keys: NotFound(messages.ABSENT_KEYS.format(keys=list_keys(keys)), reason="KEYS_NOT_FOUND"),
    "denied": lambda namespace: PermissionDenied(
        messages.NAMESPACE_DENIED.format(namespace=list_keys([namespace])), reason="NAMESPACE_DENIED"
    ),
    "not_owner": lambda keys: PermissionDenied(
        messages.NOT_OWNER.format(keys=list_keys(key_excerpt(key) for key in keys)), reason="NOT_OWNER"
    ),
    "not_granted": lambda namespace, verb, keys: PermissionDenied(
        messages.NOT_GRANTED.format(
            namespace=list_keys([namespace]), verb=verb, keys=list_keys(key_excerpt(key) for key in keys)
        ),
        reason="NOT_GRANTED",
    ),
    "no_grantee": lambda login: NotFound(messages.NO_SUCH_USER.format(login=login), reason="USER_NOT_FOUND"),
    "self_grant": lambda: InvalidArgument.from_violations(
        [FieldViolation("grantee", messages.SELF_GRANT)], reason="INVALID_GRANT"
    ),
    "no_grant": lambda grantee, prefix: NotFound(
        messages.NO_SUCH_GRANT.format(grantee=grantee, prefix=list_keys([key_excerpt(prefix)]) if prefix else '""'),
        reason="GRANT_NOT_FOUND",
    ),
    "too_many": lambda limit: ResourceExhausted(
        messages.TOO_MANY_WATCHES.format(limit=limit), reason="TOO_MANY_WATCHES", metadata={"limit": str(limit)}
    ),
    "compacted": _compacted,
    "mismatch": _mismatch,
    "quota": lambda problem: _quota(*problem),
    "full": lambda: ResourceExhausted(messages.STORAGE_FULL, reason="STORAGE_FULL"),
    "too_large": lambda size, limit: ResourceExhausted(
        messages.RESPONSE_TOO_LARGE.format(size=size, limit=limit),
        reason="RESPONSE_TOO_LARGE",
        metadata={"size": str(size), "limit": str(limit)},
    ),
}


def _result(status: str, *payload: Any) -> list[Any]:
    if status != "ok":
        raise STATUS_ERRORS[status](*payload)
    return list(payload)


@dataclass(frozen=True)
class Found:
    rows: list[Row]
    missing_keys: list[str]
    revision: int


@dataclass(frozen=True)
class Written:
    revision: int
    time: float


@dataclass(frozen=True)
class Deleted:
    revision: int
    missing_keys: list[str]


@dataclass(frozen=True)
class WatchOpened:
    id: int
    namespace: str  # as stored: names.STORED_SHARED, else a login in lower case
    start_revision: int  # the watch delivers every change after this one
    access_epoch: int


@dataclass(frozen=True)
class Changes:
    """Change-log rows [revision, time, count, events] (tarantool/tkv/watch.lua)."""

    rows: list[Row]
    committed: int
    access_epoch: int


@dataclass(frozen=True)
class Page:
    rows: list[Row]
    more: bool
    revision: int


class TarantoolAdapter:
    """kv_svc's one way to Tarantool: a method per stored function, outcomes turned into
    errors by STATUS_ERRORS and into the records above."""

    def __init__(self, client: TarantoolClient, quotas: Quotas, max_response_bytes: int):
        self.client = client
        self._limits = quotas.as_storage_limits()
        self._max_response_bytes = max_response_bytes

    async def _call(self, function: str, claims: Claims, *args: Any, read: bool = False) -> list[Any]:
        return _result(*await self.client.call(function, *claims.storage_args(), *args, read=read))

    # v1: the shared store.

    async def read(self, claims: Claims, keys: list[str]) -> Sequence[Any]:
        """The stored values of `keys` in request order (encoded google.protobuf.Value
        bytes, or native MessagePack decoded for pairs from before blobs); NotFound names
        every absent key."""
        # values_only: one tuple of the values, not the pair tuples (tkv/kv.lua v1_read).
        (values,) = await self._call("tkv.kv_read", claims, keys, self._max_response_bytes, True, read=True)
        return values

    async def write(self, claims: Claims, pairs: list[list[Any]]) -> list[str]:
        """`pairs` are [key, encoded google.protobuf.Value]; returns the skipped keys."""
        (skipped,) = await self._call("tkv.kv_write", claims, pairs, self._limits)
        return skipped

    # v2.

    async def get(self, claims: Claims, namespace: str, keys: list[str]) -> Found:
        rows, missing, revision = await self._call(
            "tkv.kv_get", claims, namespace, keys, self._max_response_bytes, read=True
        )
        return Found(rows, missing, revision)

    async def put(self, claims: Claims, namespace: str, items: list[list[Any]]) -> Written:
        """`items` are [key, encoded value, expected version or NO_CONDITION, ttl seconds
        or NO_EXPIRY]."""
        revision, time = await self._call("tkv.kv_put", claims, namespace, items, self._limits)
        return Written(revision, time)

    async def delete(self, claims: Claims, namespace: str, items: list[list[Any]]) -> Deleted:
        """`items` are [key, expected version or NO_CONDITION]."""
        revision, missing = await self._call("tkv.kv_delete", claims, namespace, items)
        return Deleted(revision, missing)

    async def list(
        self, claims: Claims, namespace: str, prefix: str, after: str | None, limit: int, keys_only: bool
    ) -> Page:
        rows, more, revision = await self._call(
            "tkv.kv_list",
            claims,
            namespace,
            prefix,
            after or "",
            after is None,
            limit,
            keys_only,
            self._max_response_bytes,
            read=True,
        )
        return Page(rows, more, revision)

    # Sharing.

    async def create_grant(self, claims: Claims, namespace: str, grantee: str, role: str, prefix: str) -> Row:
        """The grant as stored: [namespace, grantee, prefix, role, time]."""
        (grant,) = await self._call("tkv.kv_create_grant", claims, namespace, grantee, role, prefix)
        return grant

    async def list_grants(self, claims: Claims, namespace: str) -> list[Row]:
        (grants,) = await self._call("tkv.kv_list_grants", claims, namespace, read=True)
        return grants

    async def received_grants(self, claims: Claims) -> list[Row]:
        (grants,) = await self._call("tkv.kv_received_grants", claims, read=True)
        return grants

    async def delete_grant(self, claims: Claims, namespace: str, grantee: str, prefix: str) -> None:
        await self._call("tkv.kv_delete_grant", claims, namespace, grantee, prefix)

    # Watch: a watcher opens and closes with its token; the process's one follower reads
    # the change log and re-checks open watches (kv_svc/watching.py).

    async def watch_open(
        self, claims: Claims, namespace: str, prefix: str, key: str | None, start_revision: int, max_watches: int
    ) -> WatchOpened:
        id_, stored_namespace, start, epoch = await self._call(
            "tkv.kv_watch_open", claims, namespace, prefix, key, start_revision, max_watches
        )
        return WatchOpened(id_, stored_namespace, start, epoch)

    async def watch_close(self, ids: list[int]) -> None:
        await self.client.call("tkv.kv_watch_close", ids)

    async def changes(
        self, after: int, upto: int | None, max_events: int, wait_seconds: float, access_epoch: int
    ) -> Changes:
        """Rows after revision `after` (up to `upto`), waiting up to `wait_seconds` for
        the first while the access epoch stays the same; OutOfRange once compacted."""
        status, *payload = await self.client.call(
            "tkv.kv_changes", after, upto, max_events, wait_seconds, access_epoch, wait=wait_seconds
        )
        if status == "compacted":
            raise _compacted(after, payload[0])
        rows, committed, epoch = payload
        return Changes(rows, committed, epoch)

    async def watch_position(self) -> tuple[int, int]:
        """The committed revision and the access epoch."""
        _, committed, epoch = await self.client.call("tkv.kv_watch_position")
        return committed, epoch

    async def watch_check(self, open_watches: list[list[Any]]) -> list[tuple[int, str]]:
        """`open_watches`: [id, *token storage args, stored namespace, prefix or key] each;
        returns (id, problem) for each that must end: a TOKEN_PROBLEMS key or 'denied'."""
        _, ended = await self.client.call("tkv.kv_watch_check", open_watches)
        return [(id_, problem) for id_, problem in ended]
