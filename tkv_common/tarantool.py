"""The one long-lived Tarantool connection of a process, and its failure translation.

asynctnt reconnects by itself but waits forever for an answer unless told otherwise, so
every call carries a timeout. Transport failures become `Unavailable` through the one
table below; a stored function raising is a bug and propagates (-> INTERNAL).

Given several addresses (TKV_TARANTOOL_ADDR=host:port,host:port: the nodes of a replica
set), the client keeps a connection to each, asks each every TKV_TARANTOOL_PROBE_SECONDS
whether it takes writes (tkv.node_status: box.info.ro), and sends every call to the one
that does, moving when that changes: a failover needs no restart of the services. With
etcd (TKV_ETCD_ENDPOINTS: a replica set under the failover agents, docs/high-availability.md)
the client also watches the leader key, and probes at once when it changes: the move
follows the new leader within milliseconds instead of the next probe. Reads
go there too: each call also checks the caller's token against revocations, and a
replica that lags could still accept a token revoked a moment ago (docs/operations.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asynctnt
from asynctnt.exceptions import ErrorCode, TarantoolDatabaseError, TarantoolNetworkError
from opentelemetry import trace

from . import metrics, tracing
from .errors import InvalidArgument, ResourceExhausted, TkvError, Unavailable
from .etcd import Etcd, EtcdUnavailable
from .ha_keys import Keys, Leader, etcd_endpoints
from .settings import Address, Env

log = logging.getLogger(__name__)

CALL_SECONDS = metrics.Histogram(
    metrics.REGISTRY,
    "tkv_tarantool_call_seconds",
    "Tarantool stored-function calls, by function: time to the answer (a long poll includes its wait).",
    ("function",),
)
CALL_ERRORS = metrics.Counter(
    metrics.REGISTRY,
    "tkv_tarantool_call_errors_total",
    "Tarantool calls that failed, by function and kind (TarantoolNetworkError, TimeoutError, "
    "no_writable_node, ER_READONLY, ER_MEMORY_ISSUE, ..., database_error for any other).",
    ("function", "error"),
)
CONNECTED = metrics.Gauge(
    metrics.REGISTRY,
    "tkv_tarantool_connected",
    "1 if every process of the service has a connected Tarantool node to call (a replica set: "
    "its writable one), else 0.",
    aggregate="min",
)

_RETRY_LATER = "storage is unavailable, retry later"
# A replica set with no writable node: no leader (a failover under way, or etcd lost).
_NO_LEADER = "storage takes no writes now (its replica set has no leader), retry later"
# Not "nothing was written": after a failover, the new leader confirms what it holds.
_NOT_REPLICATED = "storage could not replicate the write to its quorum in time, retry later"

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
    # A replica just promoted still settles what the old master left waiting for its
    # quorum (box.ctl.clear_synchro_queue, scripts/failover.py): nothing was written.
    ErrorCode.ER_UNCOMMITTED_FOREIGN_SYNC_TXNS: lambda: Unavailable(_RETRY_LATER),
    # Tarantool 2.6 also answers "Failed to write to disk" to the transactions it rolls
    # back behind one whose quorum timed out (seen under failover tests).
    ErrorCode.ER_WAL_IO: lambda: Unavailable(_NOT_REPLICATED),
    ErrorCode.ER_SYNC_MASTER_MISMATCH: lambda: Unavailable(_RETRY_LATER),
    # A value above memtx_max_tuple_size (TKV_TARANTOOL_MAX_TUPLE_BYTES); the transaction
    # rolled back, so nothing of the batch was written.
    # Out of memtx memory: the write rolled back. Pair writes are refused earlier, at the
    # high-water mark (tarantool/tkv/store.lua); this is the rest (a batch that crossed it).
    ErrorCode.ER_MEMORY_ISSUE: lambda: ResourceExhausted("storage is full", reason="STORAGE_FULL"),
    ErrorCode.ER_MEMTX_MAX_TUPLE_SIZE: lambda: InvalidArgument(
        "Incorrect value: a value is larger than the storage allows; nothing was written", reason="VALUE_TOO_LARGE"
    ),
}
# Lost connection, refused connection, or no answer within call_timeout.
TRANSPORT_ERRORS = (TarantoolNetworkError, ConnectionError, TimeoutError)


@dataclass(frozen=True)
class TarantoolSettings:
    addresses: tuple[Address, ...]
    user: str
    password: str
    call_timeout: float
    connect_timeout: float
    reconnect_interval: float
    probe_interval: float = 0.25
    etcd: tuple[str, ...] = ()  # where the leader key lives, if the replica set has agents
    leader_key: str = ""

    @property
    def address(self) -> Address:
        """The first address: the only one, unless this is a replica set."""
        return self.addresses[0]

    @classmethod
    def from_env(cls, env: Env) -> TarantoolSettings:
        """`env` names its service: the Tarantool user's default is the service's own."""
        return cls(
            addresses=tuple(
                Address.parse(part.strip(), "TKV_TARANTOOL_ADDR") for part in env.str("TKV_TARANTOOL_ADDR").split(",")
            ),
            user=env.str("TKV_TARANTOOL_USER"),
            password=env.secret("TKV_TARANTOOL_PASSWORD"),
            call_timeout=env.float("TKV_TARANTOOL_CALL_TIMEOUT"),
            connect_timeout=env.float("TKV_TARANTOOL_CONNECT_TIMEOUT"),
            reconnect_interval=env.float("TKV_TARANTOOL_RECONNECT_INTERVAL"),
            probe_interval=env.float("TKV_TARANTOOL_PROBE_SECONDS"),
            etcd=etcd_endpoints(env),
            leader_key=Keys.from_env(env).leader,
        )


class TarantoolClient:
    def __init__(self, settings: TarantoolSettings):
        self._settings = settings
        self._nodes = [self._connection(address) for address in settings.addresses]
        # Where calls go: the one node, or the replica set's writable one (None: none known).
        self._conn: asynctnt.Connection | None = self._nodes[0] if len(self._nodes) == 1 else None
        self._address = settings.addresses[0] if len(self._nodes) == 1 else None
        self._tasks: list[asyncio.Task] = []
        self._probe_now = asyncio.Event()
        self._leader: Address | None = None  # the leader etcd names, once writable
        # The last writable node: reads go there while no node is writable and no new
        # leader is known to take writes (below).
        self._last_writable: asynctnt.Connection | None = self._conn
        self._new_leader_elsewhere = False  # etcd names a writable leader we are not on
        self._timers: dict[str, Any] = {}  # function -> its latency histogram child
        CONNECTED.set_function(lambda: 1.0 if self.is_connected else 0.0)

    def _connection(self, address: Address) -> asynctnt.Connection:
        settings = self._settings
        return asynctnt.Connection(
            host=address.host,
            port=address.port,
            username=settings.user,
            password=settings.password,
            connect_timeout=settings.connect_timeout,
            request_timeout=settings.call_timeout,
            reconnect_timeout=settings.reconnect_interval,
            # Answers are plain MessagePack; we never need the schema of spaces.
            fetch_schema=False,
            auto_refetch_schema=False,
        )

    def start(self) -> None:
        """Begin connecting in the background; calls fail with Unavailable until connected."""
        # With reconnect_timeout set, connect() retries until it succeeds, and asynctnt
        # reconnects by itself whenever the connection drops later.
        self._tasks = [asyncio.create_task(node.connect(), name="tarantool-connect") for node in self._nodes]
        if len(self._nodes) > 1:
            self._tasks.append(asyncio.create_task(self._follow_writable(), name="tarantool-writable"))
            if self._settings.etcd:
                self._tasks.append(asyncio.create_task(self._watch_leader(), name="tarantool-leader"))

    @property
    def is_connected(self) -> bool:
        return self._conn is not None and self._conn.is_connected

    @property
    def is_serving(self) -> bool:
        """Whether calls can be served: writes, or at least reads (see `call`)."""
        return self.is_connected or self._read_fallback() is not None

    def _read_fallback(self) -> asynctnt.Connection | None:
        """The last leader, for reads while no node is writable: with no leader, nothing
        newer than what it holds can be written anywhere. Not once etcd names another
        leader that takes writes (this process just has not reached it yet): that one
        may already hold newer writes, and token revocations."""
        node = self._last_writable
        if node is None or not node.is_connected or self._new_leader_elsewhere:
            return None
        return node

    async def call(self, function: str, *args: Any, wait: float = 0.0, read: bool = False) -> list[Any]:
        """Call a stored function; returns its return values as a list. `wait`: seconds
        the function may itself wait (a long poll), on top of the call timeout. `read`:
        the function writes nothing, so while a replica set has no writable node it may go
        to the last leader, read-only now (`_read_fallback`): reads keep working while etcd
        has lost its quorum (docs/high-availability.md)."""
        tracer = tracing.tracer
        if tracer is None:
            return await self._call(function, args, wait, read)
        with tracer.start_as_current_span(
            f"tarantool {function}",
            kind=trace.SpanKind.CLIENT,
            attributes={"db.system": "tarantool", "db.operation.name": function, "server.address": str(self._address)},
        ):
            return await self._call(function, args, wait, read)

    async def _call(self, function: str, args: tuple, wait: float, read: bool = False) -> list[Any]:
        timer = self._timers.get(function)
        if timer is None:
            timer = self._timers[function] = CALL_SECONDS.labels(function)
        started = time.perf_counter()
        conn = self._conn
        if conn is None and read:
            conn = self._read_fallback()
        if conn is None:
            self._log_failure(function, "no_writable_node")
            raise Unavailable(_NO_LEADER)
        try:
            response = await conn.call(function, list(args), timeout=self._settings.call_timeout + wait)
        except TRANSPORT_ERRORS as exc:
            self._log_failure(function, type(exc).__name__)
            raise Unavailable(_RETRY_LATER) from None
        except TarantoolDatabaseError as exc:
            if exc.code not in DB_ERRORS:
                self._log_failure(function, "database_error", log_it=False)  # propagates: logged as INTERNAL
                raise
            if exc.code == ErrorCode.ER_READONLY and len(self._nodes) > 1:
                self._probe_now.set()  # demoted under us: find the new master at once
            self._log_failure(function, ErrorCode(exc.code).name)
            raise DB_ERRORS[exc.code]() from None
        timer.observe(time.perf_counter() - started)
        return list(response.body)

    async def _follow_writable(self) -> None:
        """Keeps `_conn` on the replica set's writable node: asks every node each probe
        interval (at once after a read-only refusal), prefers the current node while it
        stays writable, and else the first writable one in the configured order."""
        while True:
            answers = await asyncio.gather(*(self._takes_writes(node) for node in self._nodes))
            writable = [
                (node, address)
                for node, address, takes in zip(self._nodes, self._settings.addresses, answers, strict=True)
                if takes
            ]
            # etcd's leader first (two writable nodes would be a fault: the lease holder is the
            # one that counts), then the current node, then the first writable one.
            chosen = next(
                (pair for pair in writable if pair[1] == self._leader),
                next((pair for pair in writable if pair[0] is self._conn), writable[0] if writable else None),
            )
            node, address = chosen if chosen else (None, None)
            if node is not self._conn:
                log.log(
                    logging.WARNING if node is None else logging.INFO,
                    "tarantool writable node changed",
                    extra={"from": str(self._address), "to": str(address), "writable": [str(a) for _, a in writable]},
                )
                self._conn, self._address = node, address
                if node is not None:
                    self._last_writable = node
                    self._new_leader_elsewhere = self._leader is not None and address != self._leader
            self._probe_now.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._probe_now.wait(), self._settings.probe_interval)

    async def _watch_leader(self) -> None:
        """Follows the leader key in etcd; each change triggers a probe at once. etcd being
        down changes nothing here: the probes go on as without it."""
        etcd = Etcd(self._settings.etcd, timeout=1.0)
        try:
            while True:
                try:
                    kv, revision = await etcd.get(self._settings.leader_key)
                except EtcdUnavailable:
                    self._new_leader_elsewhere = False  # no leader can be elected either
                    await asyncio.sleep(1.0)
                    continue
                leader = Leader.decode(kv.value) if kv is not None else None
                address = Address.parse(leader.tarantool) if leader is not None and leader.writable else None
                self._new_leader_elsewhere = address is not None and address != self._address
                if address != self._leader:
                    self._leader = address
                    self._probe_now.set()
                await etcd.wait_change(self._settings.leader_key, revision, timeout=5.0)
        finally:
            await etcd.close()

    async def _takes_writes(self, node: asynctnt.Connection) -> bool:
        if not node.is_connected:
            return False
        try:
            _, read_only, _ = (await node.call("tkv.node_status", [], timeout=self._settings.call_timeout)).body
        except (*TRANSPORT_ERRORS, TarantoolDatabaseError):
            return False
        return not read_only

    def _log_failure(self, function: str, error: str, *, log_it: bool = True) -> None:
        CALL_ERRORS.labels(function, error).inc()
        if log_it:
            log.warning(
                "tarantool call failed",
                extra={"function": function, "error": error, "address": str(self._address)},
            )

    async def close(self) -> None:
        for task in self._tasks:
            if not task.done():
                task.cancel()
        for node in self._nodes:
            await node.disconnect()
