"""End-to-end tier: Tarantool and both services as real processes, driven by grpcurl."""

from __future__ import annotations

import json
import subprocess
from types import SimpleNamespace

import pytest

from tests.stack import Stack, require_binary, start_all, stop_all


def grpcurl(*args: str, token: str | None = None, data: dict | None = None) -> subprocess.CompletedProcess:
    command = [require_binary("grpcurl"), "-plaintext", "-format-error", "-max-time", "20"]
    if token is not None:
        command += ["-H", f"authorization: Bearer {token}"]
    if data is not None:
        command += ["-d", json.dumps(data)]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=30)


def grpcurl_ok(*args: str, **kwargs) -> dict:
    result = grpcurl(*args, **kwargs)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout) if result.stdout.strip().startswith("{") else {"text": result.stdout}


def grpcurl_error(*args: str, **kwargs) -> dict:
    """-format-error prints the status to stderr as JSON: {"code": N, "message": ..., "details": [...]}"""
    result = grpcurl(*args, **kwargs)
    assert result.returncode != 0, result.stdout
    return json.loads(result.stderr)


@pytest.fixture(scope="session")
def processes(tmp_path_factory):
    stack = Stack(tmp_path_factory.mktemp("e2e"))
    running = start_all(stack)
    yield SimpleNamespace(
        stack=stack,
        auth=f"127.0.0.1:{stack.auth_port}",
        kv=f"127.0.0.1:{stack.kv_port}",
        gateway=f"127.0.0.1:{stack.gateway_port}",
        tarantool=running["tarantool"],
        auth_process=running["auth_svc"],
        kv_process=running["kv_svc"],
    )
    stop_all(running)
