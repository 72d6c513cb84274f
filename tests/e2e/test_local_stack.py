"""`make run`'s stack (scripts/run.sh under supervisord) as a user runs it."""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.e2e.conftest import grpcurl, grpcurl_ok
from tests.e2e.http_client import call
from tests.stack import (
    ROOT,
    Stack,
    auth_svc,
    envoy_upstreams_healthy,
    kv_svc,
    require_binary,
    start_all,
    tarantool,
    wait_until,
)

pytestmark = pytest.mark.slow


def wait_serving(*addresses: str, timeout: float = 40.0) -> None:
    deadline = time.monotonic() + timeout
    pending = list(addresses)
    while pending and time.monotonic() < deadline:
        # Each grpcurl call is a fresh connection, which may reach any worker process:
        # several answers in a row means every worker is serving.
        if all('"status": "SERVING"' in grpcurl(pending[0], "grpc.health.v1.Health/Check").stdout for _ in range(6)):
            pending.pop(0)
        else:
            time.sleep(0.2)
    assert not pending, f"not serving after {timeout}s: {pending}"


class RunScript:
    def __init__(self, stack: Stack, workers: str | None = None):
        """`workers`: TKV_WORKERS for the services; by default unset, as `make run` runs."""
        self.stack = stack
        self.workers = workers
        self.log = stack.data_dir / "run.log"
        self.popen = None

    def start(self):
        # As `make run` runs it: the default number of worker processes per service.
        env = {key: value for key, value in self.stack.env.items() if key != "TKV_WORKERS"}
        if self.workers is not None:
            env["TKV_WORKERS"] = self.workers
        env["VENV"] = sys.prefix
        with open(self.log, "ab") as log:
            self.popen = subprocess.Popen(
                ["bash", "scripts/run.sh"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_serving(f"127.0.0.1:{self.stack.auth_port}", f"127.0.0.1:{self.stack.kv_port}")

    def supervisorctl(self, *args: str) -> str:
        result = subprocess.run(
            [require_binary("supervisorctl"), "-c", "scripts/supervisord.conf", *args],
            cwd=ROOT,
            env=self.stack.env,
            capture_output=True,
            text=True,
            timeout=20,
        )
        return result.stdout.strip()

    def stop(self, signum) -> int:
        self.popen.send_signal(signum)
        try:
            return self.popen.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            raise

    def text(self) -> str:
        return self.log.read_text(errors="replace")


def port_open(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_run_script_starts_restarts_stops_and_keeps_data(tmp_path):
    stack = Stack(tmp_path / "var")
    auth, kv = f"127.0.0.1:{stack.auth_port}", f"127.0.0.1:{stack.kv_port}"
    run = RunScript(stack)
    run.start()
    try:
        banner = run.text()
        gateway = f"127.0.0.1:{stack.gateway_port}"
        for line in (
            f"Tarantool    127.0.0.1:{stack.tarantool_port}",
            f"auth_svc     {auth}",
            f"kv_svc       {kv}",
            f"gateway      {gateway}",
            f"envoy admin  127.0.0.1:{stack.admin_port}",
        ):
            assert line in banner

        login, key = f"User{uuid.uuid4().hex[:8]}", f"k-{uuid.uuid4().hex}"
        user = {"login": login, "password": "Secr3t!pass", "name": "Anna", "surname": "Smith"}
        grpcurl_ok(auth, "tkv.auth.v1.AuthService/Register", data=user)
        token = grpcurl_ok(auth, "tkv.auth.v1.AuthService/Login", data={"login": login, "password": "Secr3t!pass"})[
            "token"
        ]
        grpcurl_ok(kv, "tkv.kv.v1.KeyValueService/Write", token=token, data={"data": {key: "kept"}})
        wait_until(lambda: envoy_upstreams_healthy(stack.admin_port), "envoy's health checks")
        assert call(gateway, "POST", "/api/read/", {"keys": [key]}, token=token).body == {"data": {key: "kept"}}

        # Any component that dies is restarted by supervisord, and the restart is logged.
        for program in ("kv_svc", "tarantool", "envoy"):
            old_pid = int(run.supervisorctl("pid", program))
            os.kill(old_pid, signal.SIGKILL)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and run.supervisorctl("pid", program) in ("0", str(old_pid), ""):
                time.sleep(0.2)
            assert int(run.supervisorctl("pid", program)) != old_pid, program
            assert f"exited: {program} (terminated by SIGKILL" in run.text()
        wait_serving(auth, kv)
        wait_until(lambda: envoy_upstreams_healthy(stack.admin_port), "envoy after the restarts")
        # The restarted stack serves the data written before the kills.
        assert call(gateway, "POST", "/api/read/", {"keys": [key]}, token=token).body == {"data": {key: "kept"}}
    finally:
        assert run.stop(signal.SIGTERM) == 0
    for port in (stack.tarantool_port, stack.auth_port, stack.kv_port, stack.gateway_port, stack.admin_port):
        assert not port_open(port), f"port {port} still open after stop"

    # Second start on the same data: the user and the pair are still there; Ctrl-C stops it.
    run.start()
    try:
        token = grpcurl_ok(auth, "tkv.auth.v1.AuthService/Login", data={"login": login, "password": "Secr3t!pass"})[
            "token"
        ]
        assert grpcurl_ok(kv, "tkv.kv.v1.KeyValueService/Read", token=token, data={"keys": [key]}) == {
            "data": {key: "kept"}
        }
    finally:
        assert run.stop(signal.SIGINT) == 0
    assert not any(port_open(p) for p in (stack.tarantool_port, stack.auth_port, stack.kv_port, stack.gateway_port))


def test_sigterm_stops_a_service_gracefully(tmp_path):
    stack = Stack(tmp_path / "sigterm")
    processes = [tarantool(stack).start(), auth_svc(stack).start(), kv_svc(stack).start()]
    try:
        wait_serving(f"127.0.0.1:{stack.kv_port}")
        for service in processes[1:]:
            assert service.stop(signal.SIGTERM) == 0
            assert '"msg": "stopped"' in service.log()
            assert "Traceback" not in service.log()
    finally:
        for process in processes:
            process.stop(signal.SIGKILL)


def test_a_service_with_an_invalid_setting_exits_with_a_clear_message(tmp_path):
    stack = Stack(tmp_path / "bad-config", extra_env={"TKV_KV_MAX_BATCH_KEYS": "lots"})
    result = subprocess.run(
        [sys.executable, "-m", "kv_svc"], cwd=ROOT, env=stack.env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 1
    assert result.stderr.strip() == "kv_svc: configuration error: TKV_KV_MAX_BATCH_KEYS must be an integer, got 'lots'"


@pytest.mark.parametrize("service", ["auth_svc", "kv_svc"])
def test_a_service_whose_port_is_taken_exits_with_a_clear_message(tmp_path, service):
    import socket

    stack = Stack(tmp_path / "taken")  # one process, as TKV_WORKERS=1
    port = stack.auth_port if service == "auth_svc" else stack.kv_port
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", port))
        result = subprocess.run(
            [sys.executable, "-m", service], cwd=ROOT, env=stack.env, capture_output=True, text=True, timeout=30
        )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"{service}: configuration error: cannot listen on 127.0.0.1:{port}"
        " (taken by another process, or not an address of this host)"
    )


def test_a_stack_that_fails_to_start_leaves_nothing_running(tmp_path):
    # The harness itself (tests/stack.start_all): Tarantool starts, auth_svc cannot bind.
    import socket

    stack = Stack(tmp_path / "half")
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", stack.auth_port))
        with pytest.raises(RuntimeError) as failure:
            start_all(stack)
    assert "cannot listen on" in "\n".join(failure.value.__notes__)
    assert not port_open(stack.tarantool_port)  # the Tarantool it had started is gone


def test_tarantool_refuses_to_start_without_service_passwords(tmp_path):
    stack = Stack(tmp_path / "no-secrets")
    (Path(stack.data_dir) / "secrets" / "tarantool-tkv_kv.password").unlink()
    result = subprocess.run(
        [require_binary("tarantool"), "tarantool/init.lua"],
        cwd=ROOT,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "no password for Tarantool user tkv_kv" in result.stdout + result.stderr
    assert not (Path(stack.data_dir) / "tarantool").exists()


@pytest.mark.parametrize(
    ("workers", "console"),
    [
        # One process: its starts fail, supervisord gives up on it (FATAL), and
        # scripts/revive.py says so on the console and starts it again until it runs.
        ("1", "revive: kv_svc could not be started"),
        # Worker processes: kv_svc's own supervisor keeps restarting the worker that fails.
        ("2", '"msg": "worker exited; restarting it"'),
    ],
)
def test_a_component_that_cannot_start_is_retried_until_it_can(tmp_path, workers, console):
    # kv_svc cannot bind its port (another process holds it) until the test lets go.
    import socket

    stack = Stack(tmp_path / "var")
    run = RunScript(stack, workers=workers)
    run.start()
    try:
        run.supervisorctl("stop", "kv_svc")
        blocker = socket.socket()
        blocker.bind(("127.0.0.1", stack.kv_port))
        try:
            run.supervisorctl("start", "kv_svc")  # its process, or its workers, fail: the port is taken
            wait_until(lambda: console in run.text(), "the console message", 60)
            tries = run.text().count(console)
            # Two more failed tries while the port stays taken: it keeps trying.
            wait_until(lambda: run.text().count(console) >= tries + 2, "two more tries", 60)
        finally:
            blocker.close()
        # Port free: the next try succeeds, and the gateway serves again, with nobody's help.
        wait_serving(f"127.0.0.1:{stack.kv_port}", timeout=60)
        gateway = f"127.0.0.1:{stack.gateway_port}"
        wait_until(lambda: envoy_upstreams_healthy(stack.admin_port), "Envoy sees kv_svc", 30)
        reply = call(gateway, "POST", "/api/read/", {"keys": ["k"]})
        assert reply.status == 401  # served by kv_svc (no token), not 503
    finally:
        run.stop(signal.SIGTERM)
