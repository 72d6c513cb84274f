"""Security tier: the protections of docs/security.md, each attacked on the real stack."""

from __future__ import annotations

import time

import pytest

import auth_svc.storage
from tests.stack import Stack, tarantool


@pytest.fixture(scope="module")
def tarantool_stack(tmp_path_factory):
    """A Tarantool of its own per test module; services are started by each test with the
    settings it attacks."""
    stack = Stack(tmp_path_factory.mktemp("security"))
    process = tarantool(stack).start()
    yield stack
    process.stop()


class Clock:
    """Stands in for the `time` module in auth_svc.storage: its time() moves only when told."""

    def __init__(self) -> None:
        # Whole seconds, so that the halves the tests add stay exact.
        self.now = float(int(time.time()))

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    """auth_svc's clock for the login limits, moved by the test instead of waited for."""
    clock = Clock()
    monkeypatch.setattr(auth_svc.storage, "time", clock)
    return clock
