"""Integration tier: both services in-process on real sockets, against a real Tarantool
started from tarantool/init.lua (the same Lua `make run` uses)."""

from __future__ import annotations

import pytest

from tests.inprocess import register_and_login, start_services, stop_services
from tests.stack import Stack, tarantool
from tests.tokens_for_tests import bearer


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    stack = Stack(tmp_path_factory.mktemp("integration"))
    process = tarantool(stack).start()
    yield stack
    process.stop()


@pytest.fixture(scope="session")
async def svc(stack):
    harness = await start_services(stack)
    yield harness
    await stop_services(harness)


@pytest.fixture
async def token(svc) -> str:
    return (await register_and_login(svc))[1]


@pytest.fixture
def auth_md(token):
    return bearer(token)
