"""Reliability tier: faults injected into real processes while clients keep working."""

from __future__ import annotations

import signal

import pytest

from tests.stack import Stack, start_all, stop_all


@pytest.fixture
def stack(tmp_path):
    """Tarantool, both services and Envoy as processes (in `stack.processes`), each test its own."""
    stack = Stack(tmp_path / "stack")
    stack.processes = start_all(stack)
    yield stack
    stop_all(stack.processes, signal.SIGKILL)
