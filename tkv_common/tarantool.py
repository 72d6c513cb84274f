"""The one long-lived Tarantool connection of a process, and its failure translation.

asynctnt reconnects by itself but waits forever for an answer unless told otherwise, so
every call carries a timeout. Transport failures become `Unavailable` through the one
table below; a stored function raising is a bug and propagates (-> INTERNAL).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asynctnt
from asynctnt.exceptions import ErrorCode, TarantoolDatabaseError, TarantoolNetworkError

from .errors import InvalidArgument, ResourceExhausted, TkvError, TokenRejected, Unavailable
from .settings import Address, Env

log = logging.getLogger(__name__)

_RETRY_LATER = "storage is unavailable, retry later"
_NOT_REPLICATED = "storage could not replicate the write to its quorum; nothing was written, retry later"

# The one translation of Tarantool's errors into the client's terms. Any other database
# error is a bug (a stored function failing) and propagates to become INTERNAL.
DB_ERRORS: dict[int, Callable[[], TkvError]] = {
    # While Tarantool starts, or on a read-only replica: retrying later (elsewhere) helps.
    ErrorCode.ER_LOADING: lambda: Unavailable(_RETRY_LATER),
    ErrorCode.ER_READONLY: lambda: Unavailable(_RETRY_LATER),
    # Synchronous replication (TKV_TARANTOOL_SYNC_QUORUM) without its quorum: the write
    # waited TKV_TARANTOOL_SYNC_TIMEOUT_SECONDS and was rolled back, and so was every write
    # queued behind it. Nothing was written; retrying once a replica is back succeeds.
    ErrorCode.ER_SYNC_QUORUM_TIMEOUT: lambda: Unavailable(_NOT_REPLICATED),
    ErrorCode.ER_SYNC_ROLLBACK: lambda: Unavailable(_NOT_REPLICATED),
    # A value above memtx_max_tuple_size (TKV_TARANTOOL_MAX_TUPLE_BYTES); the transaction
    # rolled back, so nothing of the batch was written.
    # Out of memtx memory: the write rolled back. Pair writes are refused earlier, at the
    # high-water mark (tarantool/tkv/kv.lua); this is the rest (a batch that crossed it).
    ErrorCode.ER_MEMORY_ISSUE: lambda: ResourceExhausted("storage is full", reason="STORAGE_FULL"),
    ErrorCode.ER_MEMTX_MAX_TUPLE_SIZE: lambda: InvalidArgument(
        "Incorrect value: a value is larger than the storage allows; nothing was written", reason="VALUE_TOO_LARGE"
    ),
}
# What the authenticated stored functions answer when the caller's token may no longer be
# used (tarantool/tkv/api.lua token_problem), for every service's storage table.
TOKEN_PROBLEMS: dict[str, Callable[[], TkvError]] = {
    "revoked": lambda: TokenRejected("access token has been revoked", reason="TOKEN_REVOKED"),
    "no_user": lambda: TokenRejected("the access token's account no longer exists", reason="TOKEN_INVALID"),
    "superseded": lambda: TokenRejected(
        "access token has been revoked: the account's password changed or it logged out everywhere",
        reason="TOKEN_REVOKED",
    ),
}

# Lost connection, refused connection, or no answer within call_timeout.
TRANSPORT_ERRORS = (TarantoolNetworkError, ConnectionError, TimeoutError)


@dataclass(frozen=True)
class TarantoolSettings:
    address: Address
    user: str
    password: str
    call_timeout: float
    connect_timeout: float
    reconnect_interval: float

    @classmethod
    def from_env(cls, env: Env, *, user: str) -> TarantoolSettings:
        user = env.str("TKV_TARANTOOL_USER", user)
        secrets_dir = env.path("TKV_SECRETS_DIR", env.data_dir() / "secrets")
        return cls(
            address=env.address("TKV_TARANTOOL_ADDR", "127.0.0.1:3301"),
            user=user,
            password=env.secret("TKV_TARANTOOL_PASSWORD", Path(secrets_dir) / f"tarantool-{user}.password"),
            call_timeout=env.float("TKV_TARANTOOL_CALL_TIMEOUT", 2.0),
            connect_timeout=env.float("TKV_TARANTOOL_CONNECT_TIMEOUT", 2.0),
            reconnect_interval=env.float("TKV_TARANTOOL_RECONNECT_INTERVAL", 0.25),
        )


class TarantoolClient:
    def __init__(self, settings: TarantoolSettings):
        self._settings = settings
        self._conn = asynctnt.Connection(
            host=settings.address.host,
            port=settings.address.port,
            username=settings.user,
            password=settings.password,
            connect_timeout=settings.connect_timeout,
            request_timeout=settings.call_timeout,
            reconnect_timeout=settings.reconnect_interval,
            # Answers are plain MessagePack; we never need the schema of spaces.
            fetch_schema=False,
            auto_refetch_schema=False,
        )
        self._connecting: asyncio.Task | None = None

    def start(self) -> None:
        """Begin connecting in the background; calls fail with Unavailable until connected."""
        # With reconnect_timeout set, connect() retries until it succeeds, and asynctnt
        # reconnects by itself whenever the connection drops later.
        self._connecting = asyncio.create_task(self._conn.connect(), name="tarantool-connect")

    @property
    def is_connected(self) -> bool:
        return self._conn.is_connected

    async def call(self, function: str, *args: Any, wait: float = 0.0) -> list[Any]:
        """Call a stored function; returns its return values as a list. `wait`: seconds
        the function may itself wait (a long poll), on top of the call timeout."""
        try:
            response = await self._conn.call(function, list(args), timeout=self._settings.call_timeout + wait)
        except TRANSPORT_ERRORS as exc:
            self._log_failure(function, type(exc).__name__)
            raise Unavailable(_RETRY_LATER) from None
        except TarantoolDatabaseError as exc:
            if exc.code not in DB_ERRORS:
                raise
            self._log_failure(function, ErrorCode(exc.code).name)
            raise DB_ERRORS[exc.code]() from None
        return list(response.body)

    def _log_failure(self, function: str, error: str) -> None:
        log.warning(
            "tarantool call failed",
            extra={"function": function, "error": error, "address": str(self._settings.address)},
        )

    async def close(self) -> None:
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
        await self._conn.disconnect()
