"""Server bootstrap shared by both services: one grpc.aio server with the interceptor
chain, health and reflection, a storage-driven health status, and a two-stage exit
(SIGTERM/SIGINT -> health NOT_SERVING -> server.stop(grace)).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import gc
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import prometheus_client
import uvloop
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from . import interceptors, logs, metrics, storage_stats, tracing
from .interceptors import CallPathInterceptor
from .keys import KeySet
from .owner_only import owner_only_dir, owner_only_socket
from .settings import Address, ConfigError, Env
from .tarantool import TarantoolClient
from .tokens import TokenVerifier

log = logging.getLogger(__name__)

# Callable without a token, by full method name: infrastructure every client may use.
INFRASTRUCTURE_METHODS = frozenset(
    {
        "/grpc.health.v1.Health/Check",
        "/grpc.health.v1.Health/Watch",
        "/grpc.health.v1.Health/List",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    }
)


@dataclass(frozen=True)
class TlsSettings:
    """Server certificate, and optionally the CA client certificates must chain to (mTLS)."""

    cert_file: Path
    key_file: Path
    client_ca_file: Path | None

    @classmethod
    def from_env(cls, env: Env) -> TlsSettings | None:
        cert, key = env.str("TKV_TLS_CERT_FILE"), env.str("TKV_TLS_KEY_FILE")
        if not cert and not key:
            return None  # plain loopback, the local default
        if not (cert and key):
            raise ConfigError("set both TKV_TLS_CERT_FILE and TKV_TLS_KEY_FILE, or neither")
        client_ca = env.str("TKV_TLS_CLIENT_CA_FILE")
        return cls(Path(cert), Path(key), Path(client_ca) if client_ca else None)

    def credentials(self) -> grpc.ServerCredentials:
        try:
            pair = (self.key_file.read_bytes(), self.cert_file.read_bytes())
            client_ca = self.client_ca_file.read_bytes() if self.client_ca_file else None
        except OSError as exc:
            raise ConfigError(f"cannot read TLS file {exc.filename} ({exc.strerror})") from None
        return grpc.ssl_server_credentials([pair], root_certificates=client_ca, require_client_auth=bool(client_ca))


@dataclass(frozen=True)
class ServerSettings:
    listen: Address
    max_request_bytes: int
    max_response_bytes: int
    grace_seconds: float
    # Health turns NOT_SERVING only once the storage has been away this long: a failover
    # of the replica set (well under a second) does not take every worker out of Envoy's
    # rotation, which would add up to a health-check interval of 503s after it.
    storage_grace_seconds: float
    log_level: str
    tls: TlsSettings | None
    max_concurrent_rpcs: int
    # Processes serving the same port (SO_REUSEPORT): Python runs one core per process.
    workers: int
    # uvloop runs grpc.aio's callbacks faster than asyncio's own loop (docs/benchmarks).
    event_loop: str
    # If set, worker i also listens on <dir>/<service>-<i>.sock, for Envoy to balance
    # calls across workers (SO_REUSEPORT balances connections, and gRPC has few of them).
    worker_socket_dir: Path | None
    # Prometheus /metrics (tkv_common/metrics.py); None: not served ("off").
    metrics_listen: Address | None = None
    # Where worker processes publish their metric snapshots for /metrics to add up.
    metrics_dir: Path | None = None

    @classmethod
    def from_env(cls, env: Env, *, service: str, listen_var: str, metrics_var: str) -> ServerSettings:
        metrics_raw = env.str(metrics_var)
        metrics_listen = None if metrics_raw == "off" else Address.parse(metrics_raw, metrics_var)
        metrics_root = env.path("TKV_METRICS_DIR")
        return cls(
            listen=env.address(listen_var),
            max_request_bytes=env.int("TKV_MAX_REQUEST_BYTES"),
            max_response_bytes=env.int("TKV_MAX_RESPONSE_BYTES"),
            grace_seconds=env.float("TKV_SHUTDOWN_GRACE_SECONDS"),
            storage_grace_seconds=env.float("TKV_HEALTH_STORAGE_GRACE_SECONDS"),
            log_level=env.str("TKV_LOG_LEVEL"),
            tls=TlsSettings.from_env(env),
            max_concurrent_rpcs=env.int("TKV_MAX_CONCURRENT_RPCS"),
            workers=env.int("TKV_WORKERS"),
            event_loop=env.choice("TKV_EVENT_LOOP"),
            worker_socket_dir=Path(socket_dir) if (socket_dir := env.str("TKV_WORKER_SOCKET_DIR")) else None,
            metrics_listen=metrics_listen,
            # One directory per metrics port: two services sharing a data dir never mix.
            metrics_dir=metrics_root / f"{service}-{metrics_listen.port}" if metrics_listen else None,
        )


Registrar = Callable[[grpc.aio.Server], None]


class GrpcService:
    """A grpc.aio server for some API services plus its health and reflection services.

    `start()` binds and serves, `stop()` drains; `serve_until_signalled()` is what a
    service's __main__ runs. Tests use start/stop directly on 127.0.0.1:0.
    """

    def __init__(
        self,
        *,
        settings: ServerSettings,
        service_names: Sequence[str],
        registrars: Iterable[Registrar],
        verifier: TokenVerifier,
        keys: KeySet,
        public_methods: frozenset[str],
        token_refusal: str,
        storage: TarantoolClient,
        on_keys_refresh: Callable[[], None] | None = None,
        report_storage: bool = False,
    ):
        """`report_storage`: poll the store's figures for /metrics (kv_svc does it for both)."""
        self._settings = settings
        self._keys = keys
        self._on_keys_refresh = on_keys_refresh
        self._names = list(service_names)
        self._storage = storage
        self.health = health.aio.HealthServicer()
        self.server = grpc.aio.server(
            # Access log -> error mapping -> authentication: see interceptors.py.
            interceptors=[CallPathInterceptor(verifier, public_methods | INFRASTRUCTURE_METHODS, token_refusal)],
            # Past this many calls in flight grpc answers RESOURCE_EXHAUSTED (HTTP 429) at once
            # instead of queueing them in memory.
            maximum_concurrent_rpcs=settings.max_concurrent_rpcs,
            options=[
                # Worker processes share the port; a lone process must not share it by accident.
                ("grpc.so_reuseport", 1 if settings.workers > 1 else 0),
                # Over the limit grpc answers RESOURCE_EXHAUSTED before any handler runs.
                ("grpc.max_receive_message_length", settings.max_request_bytes),
                ("grpc.max_send_message_length", settings.max_response_bytes),
            ],
        )
        for register in registrars:
            register(self.server)
        interceptors.initialize_metrics([*self._names, health.SERVICE_NAME])
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection([*self._names, health.SERVICE_NAME, reflection.SERVICE_NAME], self.server)
        self._watcher: asyncio.Task | None = None
        self._report_storage = report_storage
        self._background: list[asyncio.Task] = []
        self.port = 0

    async def start(self, worker_socket: Path | None = None) -> int:
        """Listens on the service's address, and on `worker_socket` (this worker's own
        Unix socket, see ServerSettings.worker_socket_dir) if given."""
        self.port = self._listen(str(self._settings.listen))
        if worker_socket is not None:
            # Owner only: the sockets answer like the service's port, for this user's Envoy.
            owner_only_dir(worker_socket.parent)
            self._listen(f"unix:{worker_socket}")
            owner_only_socket(worker_socket)
        self._storage.start()
        self._keys.start(self._on_keys_refresh)
        await self.server.start()
        self._watcher = asyncio.create_task(self._watch_storage(), name="storage-health")
        if self._report_storage:
            self._background.append(asyncio.create_task(storage_stats.poll(self._storage), name="storage-stats"))
        return self.port

    def _listen(self, address: str) -> int:
        """The port bound. A bind that fails is the operator's to fix (another process has
        the port, or the address is not this host's): a ConfigError, which the process
        reports in one line, not grpc's traceback."""
        tls = self._settings.tls
        try:
            if tls is None:
                return self.server.add_insecure_port(address)
            return self.server.add_secure_port(address, tls.credentials())
        except RuntimeError:  # grpc's "Failed to bind"; its own log line before it says why
            raise ConfigError(
                f"cannot listen on {address} (taken by another process, or not an address of this host)"
            ) from None

    async def stop(self) -> None:
        # Stage 1: tell load balancers and health checks to go elsewhere.
        await self.health.enter_graceful_shutdown()
        for task in (self._watcher, *self._background):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        # Stage 2: refuse new calls, give in-flight ones `grace` seconds, then cancel them.
        await self.server.stop(self._settings.grace_seconds)
        await self._keys.stop()
        await self._storage.close()

    async def serve_until_signalled(self, worker_socket: Path | None = None) -> None:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stopping.set)
        port = await self.start(worker_socket)
        # What start-up made (modules, descriptors, settings) lives as long as the process:
        # kept out of the collector, a full collection scans only what serving made
        # (measured under the watch fan-out load: 30-50 ms pauses of every call -> ~4 ms).
        # After listening, so that a port already taken still fails the start at once.
        gc.collect()
        gc.freeze()
        log.info(
            "serving",
            extra={
                "listen": f"{self._settings.listen.host}:{port}",
                "worker_socket": str(worker_socket) if worker_socket else None,
                "services": self._names,
            },
        )
        await stopping.wait()
        log.info("stopping", extra={"grace_seconds": self._settings.grace_seconds})
        await self.stop()
        log.info("stopped")

    async def _watch_storage(self, interval: float = 0.25) -> None:
        """Health follows the storage connection: NOT_SERVING while Tarantool is away
        (for longer than the storage grace)."""
        serving = None
        away_since: float | None = None
        while True:
            # A replica set with no writable node still serves reads (tkv_common/tarantool.py).
            connected = getattr(self._storage, "is_serving", self._storage.is_connected)
            away_since = None if connected else (away_since or time.monotonic())
            now = connected or (
                serving is not False and time.monotonic() - away_since < self._settings.storage_grace_seconds
            )
            if serving is None:
                now = connected
            if now != serving:
                status = health_pb2.HealthCheckResponse.SERVING if now else health_pb2.HealthCheckResponse.NOT_SERVING
                for name in ["", *self._names]:
                    await self.health.set(name, status)
                log.log(
                    logging.INFO if now else logging.WARNING,
                    "storage connected" if now else "storage unreachable",
                    extra={"health": health_pb2.HealthCheckResponse.ServingStatus.Name(status)},
                )
                serving = now
            await asyncio.sleep(interval)


def worker_socket(directory: Path, service: str, index: int) -> Path:
    """Where worker `index` of `service` listens besides the shared port; Envoy's config
    (scripts/render_envoy.py) lists the same paths."""
    return directory / f"{service}-{index}.sock"


def _die_with_parent(parent: int) -> None:
    """A worker must not outlive its supervisor (killed with SIGKILL, say): it would keep
    serving the shared port next to the group that replaces it."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() != parent:  # it died before prctl took effect
        sys.exit(1)


def _serve_metrics(settings: ServerSettings) -> None:
    """Serves /metrics from this process (a daemon thread): the sum of what the service's
    processes publish to its metrics directory, emptied here first."""
    if settings.metrics_listen is None or settings.metrics_dir is None:
        return
    metrics.prepare_directory(settings.metrics_dir)
    listen = settings.metrics_listen
    try:
        prometheus_client.start_http_server(
            listen.port, addr=listen.host, registry=metrics.exposition_registry(settings.metrics_dir)
        )
    except OSError as exc:
        raise ConfigError(f"cannot serve metrics on {listen} ({exc.strerror})") from None


def _serve(
    name: str,
    load_settings: Callable[[], Any],
    create_service: Callable[[Any], GrpcService],
    parent: int | None = None,
    index: int = 0,
) -> None:
    """One serving process (worker `index`): settings, logging, service, serve until
    SIGTERM/SIGINT."""
    if parent is not None:
        _die_with_parent(parent)

    async def serve(settings: Any) -> None:
        # grpc.aio.server() binds to the running loop, so the service is built in here.
        service = create_service(settings)
        log.info(
            "starting",
            extra={"tarantool": str(settings.tarantool.address), "event_loop": settings.server.event_loop},
        )
        socket_dir = settings.server.worker_socket_dir
        await service.serve_until_signalled(worker_socket(socket_dir, name, index) if socket_dir else None)

    publisher = None
    try:
        settings = load_settings()
        logs.configure(name, settings.server.log_level)
        tracing.configure(name)
        if parent is None:
            _serve_metrics(settings.server)  # a lone process serves its own
        if settings.server.metrics_dir is not None:  # set exactly when /metrics is served
            publisher = metrics.Publisher(settings.server.metrics_dir)
            publisher.start()
        loop_factory = uvloop.new_event_loop if settings.server.event_loop == "uvloop" else None
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(serve(settings))
    except ConfigError as exc:
        sys.exit(f"{name}: configuration error: {exc}")
    finally:
        if publisher is not None:
            publisher.stop()  # what this worker counted since its last snapshot
        tracing.shutdown()  # spans still queued for export
        # Worker processes leave through os._exit, which skips atexit: write buffered lines now.
        logging.shutdown()


# A worker that ran at least this long is restarted at once; one that dies sooner is
# restarted after a pause of 1 s, doubling with each such death up to 30 s: a crash loop
# must not spin a core.
_HEALTHY_RUN_SECONDS = 10.0
_FIRST_RESTART_DELAY, _MAX_RESTART_DELAY = 1.0, 30.0


def run_main(name: str, load_settings: Callable[[], Any], create_service: Callable[[Any], GrpcService]) -> None:
    """A service's __main__. With TKV_WORKERS > 1 (default: one per core) this process
    starts that many serving processes on the same port and supervises them: SIGTERM and
    SIGINT are passed on (exit 0 once all stopped cleanly), and a worker that dies is
    restarted on its own, with backoff, while the others keep serving.

    A configuration problem exits with a one-line message instead of a traceback.
    """
    try:
        settings = load_settings()
    except ConfigError as exc:
        sys.exit(f"{name}: configuration error: {exc}")
    if settings.server.workers == 1:
        _serve(name, load_settings, create_service)
        return
    logs.configure(name, settings.server.log_level)
    try:
        _serve_metrics(settings.server)  # the supervisor serves the sum over its workers
    except ConfigError as exc:
        sys.exit(f"{name}: configuration error: {exc}")
    # spawn, not fork: gRPC's native state must not be copied into a child.
    context = multiprocessing.get_context("spawn")
    children: dict[int, multiprocessing.Process] = {}
    started_at: dict[int, float] = {}
    delay = dict.fromkeys(range(settings.server.workers), 0.0)  # the last pause, per worker
    due: dict[int, float] = {}  # index -> when to start it again
    stopping = False

    def start(index: int) -> None:
        child = context.Process(
            target=_serve, args=(name, load_settings, create_service, os.getpid(), index), name=f"{name}-{index}"
        )
        child.start()
        children[index], started_at[index] = child, time.monotonic()

    def pass_on(signum, _frame):
        nonlocal stopping
        stopping = True
        due.clear()
        for child in children.values():
            if child.is_alive():
                os.kill(child.pid, signum)

    signal.signal(signal.SIGTERM, pass_on)
    signal.signal(signal.SIGINT, pass_on)
    for index in range(settings.server.workers):
        start(index)
    while True:
        now = time.monotonic()
        if not stopping:
            for index, child in children.items():
                if index in due or child.is_alive():
                    continue
                lived = now - started_at[index]
                if lived >= _HEALTHY_RUN_SECONDS:
                    delay[index] = 0.0
                else:
                    delay[index] = min(max(2 * delay[index], _FIRST_RESTART_DELAY), _MAX_RESTART_DELAY)
                due[index] = now + delay[index]
                log.warning(
                    "worker exited; restarting it",
                    extra={"worker": index, "exit_code": child.exitcode, "ran_seconds": round(lived, 1),
                           "restart_in_seconds": round(due[index] - now, 1)},
                )  # fmt: skip
            for index, when in list(due.items()):
                if when <= now:
                    del due[index]
                    start(index)
        alive = [child for child in children.values() if child.is_alive()]
        if stopping and not alive:
            break
        # Every worker not already waiting for its restart, dead or alive: one that died since
        # the check above still wakes this wait (left out, it would never be noticed).
        watched = alive if stopping else [child for index, child in children.items() if index not in due]
        timeout = max(0.0, min(due.values()) - time.monotonic()) if due else None
        multiprocessing.connection.wait([child.sentinel for child in watched], timeout=timeout)
    sys.exit(1 if any(child.exitcode for child in children.values()) else 0)
