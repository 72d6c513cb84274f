"""Real processes for the integration and e2e tiers: a Tarantool started from the
project's own tarantool/init.lua, and the services as `python -m` subprocesses.

Everything listens on 127.0.0.1 ports picked at random; state goes to a temp dir.
A missing binary is a failure, never a skip.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests import log_scan
from tkv_common import devsecrets

ROOT = Path(__file__).resolve().parent.parent
# All a test process takes from the runner's environment: where programs are, and locale,
# home and temp settings. Nothing else, so that a TKV_* variable (or any other) left in the
# shell cannot change what the tests run; every setting a test needs is in Stack.env.
INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ")
# Cheap argon2 for speed; the default cost has its own unit test.
FAST_ARGON2 = {"TKV_ARGON2_MEMORY_KIB": "1024", "TKV_ARGON2_TIME_COST": "1"}


def _ephemeral_ports() -> range:
    """The ports the kernel picks for the local end of outgoing connections (Linux)."""
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    return range(low, high + 1)


_EPHEMERAL = _ephemeral_ports()
# Ports for the processes tests start come from outside that range: a port picked there was
# free when looked at, but any outgoing connection could take it before the process bound it
# (kv_svc's metrics port did, once in make test: "Address already in use").
_LISTEN_PORTS = range(20000, _EPHEMERAL.start) if _EPHEMERAL.start > 21000 else range(_EPHEMERAL.stop, 65536)
_GIVEN: set[int] = set()


def free_port() -> int:
    """A port nothing listens on, outside the ephemeral range, not given before by this
    process (a stack asks for several before any is bound)."""
    if len(_GIVEN) > len(_LISTEN_PORTS) // 2:
        _GIVEN.clear()  # a long session: those given long ago are bound or gone by now
    for _ in range(1000):
        port = random.choice(_LISTEN_PORTS)
        if port in _GIVEN:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _GIVEN.add(port)
        return port
    raise RuntimeError(f"no free port in {_LISTEN_PORTS}")


def wait_for_port(port: int, timeout: float = 15.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def require_binary(name: str) -> str:
    path = shutil.which(name) or (
        str(Path(sys.executable).parent / name) if (Path(sys.executable).parent / name).exists() else None
    )
    if path is None:
        raise RuntimeError(f"{name} is not installed; run `make test` (scripts/bootstrap.sh installs it)")
    return path


@dataclass
class Stack:
    """Ports, data dir and environment shared by the processes of one test stack."""

    data_dir: Path
    tarantool_port: int = field(default_factory=free_port)
    auth_port: int = field(default_factory=free_port)
    kv_port: int = field(default_factory=free_port)
    gateway_port: int = field(default_factory=free_port)
    admin_port: int = field(default_factory=free_port)
    auth_metrics_port: int = field(default_factory=free_port)
    kv_metrics_port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        self.data_dir.mkdir(parents=True, exist_ok=True)
        devsecrets.ensure(self.data_dir)

    @property
    def console_socket(self) -> Path:
        return self.data_dir / "console.sock"

    def console(self, expression: str, timeout: float = 5.0) -> str:
        """Evaluate a Lua expression on Tarantool's admin console; its first result as text."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(timeout)
            sock.connect(str(self.console_socket))
            sock.recv(4096)  # greeting
            sock.sendall(expression.encode() + b"\n")
            reply = b""
            while not reply.endswith(b"\n...\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                reply += chunk
        lines = reply.decode().splitlines()
        # YAML: "---", "- <value>", "..."
        return lines[1][2:] if len(lines) > 2 and lines[1].startswith("- ") else ""

    @property
    def env(self) -> dict[str, str]:
        return {
            **{name: os.environ[name] for name in INHERITED if name in os.environ},
            "TKV_DATA_DIR": str(self.data_dir),
            "TKV_TARANTOOL_LISTEN": f"127.0.0.1:{self.tarantool_port}",
            "TKV_TARANTOOL_ADDR": f"127.0.0.1:{self.tarantool_port}",
            "TKV_AUTH_LISTEN": f"127.0.0.1:{self.auth_port}",
            "TKV_KV_LISTEN": f"127.0.0.1:{self.kv_port}",
            "TKV_GATEWAY_LISTEN": f"127.0.0.1:{self.gateway_port}",
            "TKV_ENVOY_ADMIN_LISTEN": f"127.0.0.1:{self.admin_port}",
            "TKV_AUTH_METRICS_LISTEN": f"127.0.0.1:{self.auth_metrics_port}",
            "TKV_KV_METRICS_LISTEN": f"127.0.0.1:{self.kv_metrics_port}",
            "TKV_TARANTOOL_MEMORY_BYTES": str(128 * 1024 * 1024),
            "TKV_TARANTOOL_CONSOLE_SOCKET": str(self.console_socket),
            **FAST_ARGON2,
            # One process per service keeps the readiness check simple; test_workers.py runs two.
            "TKV_WORKERS": "1",
            # As `make run`: Envoy reaches each worker on its own socket.
            "TKV_WORKER_SOCKET_DIR": str(self.data_dir / "run"),
            # Tests register and log in far faster than the default per-client edge limit.
            "TKV_GATEWAY_AUTH_RATE": "100000",
            "TKV_GATEWAY_AUTH_BURST": "100000",
            **self.extra_env,
        }


class NeverHappened(AssertionError):
    """What a test waited for did not come before its deadline: an assertion about the
    system (it must get there in that time), not a fault of the test's own."""


def wait_until(ready, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise NeverHappened(f"{what} not ready after {timeout}s")
        time.sleep(0.05)


async def eventually(check, what: str, timeout: float = 10.0, interval: float = 0.05):
    """Awaits `check()` until it returns something true, which it returns; NeverHappened
    naming `what` (and the last value) after `timeout`. For waits on a condition a fixed
    sleep would only guess at."""
    deadline = time.monotonic() + timeout
    while not (value := await check()):
        if time.monotonic() > deadline:
            raise NeverHappened(f"{what} not true after {timeout}s (last: {value!r})")
        await asyncio.sleep(interval)
    return value


async def within(awaitable, seconds: float, what: str):
    """`awaitable`'s result, or NeverHappened after `seconds`: for the next message of a
    stream that the test expects to come."""
    try:
        return await asyncio.wait_for(awaitable, seconds)
    except TimeoutError:
        raise NeverHappened(f"{what} did not come within {seconds}s") from None


def grpc_serving(port: int) -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
        except grpc.RpcError:
            return False
    return response.status == health_pb2.HealthCheckResponse.SERVING


def envoy_upstreams_healthy(admin_port: int) -> bool:
    import urllib.request

    try:
        clusters = urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/clusters", timeout=1).read().decode()
    except OSError:
        return False
    # One line per endpoint: one per worker of each service (other clusters, such as an
    # OTLP collector's, do not count).
    flags = [
        line
        for line in clusters.splitlines()
        if "::health_flags::" in line and line.split("::", 1)[0] in ("auth_svc", "kv_svc")
    ]
    clusters_seen = {line.split("::", 1)[0] for line in flags}
    return clusters_seen == {"auth_svc", "kv_svc"} and all(line.endswith("::healthy") for line in flags)


class Process:
    """One child process with its output captured to a log file in the data dir.

    `ready` (optional) is what "started" means beyond a listening port: a service is ready
    when it reports SERVING, i.e. it reached Tarantool."""

    def __init__(self, name: str, args: list[str], stack: Stack, port: int, ready=None, env=None, wrap=None):
        self.name, self.args, self.stack, self.port, self.ready = name, args, stack, port, ready
        # `env`: additions to the stack's environment; `wrap`: a command prefix (a cgroup).
        self.env, self.wrap = env or {}, wrap or []
        self.log_path = stack.data_dir / f"{name}.log"
        log_scan.register(self.log_path)
        self.popen: subprocess.Popen | None = None

    def start(self, wait: bool = True) -> Process:
        log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        self.popen = subprocess.Popen(
            [*self.wrap, *self.args], cwd=ROOT, env={**self.stack.env, **self.env}, stdout=log, stderr=subprocess.STDOUT
        )
        if wait:
            wait_for_port(self.port, process=self.popen)
            if self.ready is not None:
                wait_until(self.ready, self.name)
        return self

    def send(self, signum: int) -> None:
        assert self.popen is not None
        self.popen.send_signal(signum)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.popen is None or self.popen.poll() is not None:
            return self.popen.returncode if self.popen else 0
        self.popen.send_signal(signum)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
            raise

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def tarantool(stack: Stack) -> Process:
    return Process("tarantool", [require_binary("tarantool"), "tarantool/init.lua"], stack, stack.tarantool_port)


def auth_svc(stack: Stack) -> Process:
    serving = None if stack.extra_env.get("TKV_TLS_CERT_FILE") else lambda: grpc_serving(stack.auth_port)
    return Process("auth_svc", [sys.executable, "-m", "auth_svc"], stack, stack.auth_port, ready=serving)


def kv_svc(stack: Stack) -> Process:
    serving = None if stack.extra_env.get("TKV_TLS_CERT_FILE") else lambda: grpc_serving(stack.kv_port)
    return Process("kv_svc", [sys.executable, "-m", "kv_svc"], stack, stack.kv_port, ready=serving)


def envoy(stack: Stack, *, upstreams_up: bool = True) -> Process:
    """Envoy with the config `make run` renders (scripts/render_envoy.py), for this stack's
    ports; ready once its health checks see both services (unless `upstreams_up` is False)."""
    rendered = subprocess.run(
        [sys.executable, "scripts/render_envoy.py", str(stack.data_dir / "envoy")],
        cwd=ROOT,
        env=stack.env,
        check=True,
        capture_output=True,
        text=True,
    )
    threads = subprocess.run(
        [sys.executable, "scripts/render_envoy.py", "--concurrency"],
        cwd=ROOT,
        env=stack.env,
        check=True,
        capture_output=True,
        text=True,
    )
    command = [
        require_binary("envoy"),
        "-c",
        rendered.stdout.strip(),
        "--disable-hot-restart",
        "--concurrency",
        threads.stdout.strip(),
        "--log-level",
        "warning",
    ]
    ready = (lambda: envoy_upstreams_healthy(stack.admin_port)) if upstreams_up else None
    return Process("envoy", command, stack, stack.gateway_port, ready=ready)


def start_all(stack: Stack) -> dict[str, Process]:
    """Tarantool, both services and Envoy, started in order and ready."""
    processes = {
        "tarantool": tarantool(stack),
        "auth_svc": auth_svc(stack),
        "kv_svc": kv_svc(stack),
        "envoy": envoy(stack),
    }
    for process in processes.values():
        try:
            process.start()
        except BaseException as error:
            # What did start must not outlive the failure: a Tarantool left running after
            # auth_svc once failed to get ready survived its whole test run. The failing
            # process's last lines say why it failed.
            error.add_note(f"{process.name}'s log ends:\n" + "\n".join(process.log().splitlines()[-15:]))
            stop_all(processes, signal.SIGKILL)
            raise
    return processes


def stop_all(processes: dict[str, Process], signum: int = signal.SIGTERM) -> None:
    for process in reversed(list(processes.values())):
        process.stop(signum)
