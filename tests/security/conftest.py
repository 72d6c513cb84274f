"""Security tier: the protections of docs/security.md, each attacked on the real stack."""

from __future__ import annotations

import pytest

from tests.stack import Stack, tarantool


@pytest.fixture(scope="module")
def tarantool_stack(tmp_path_factory):
    """A Tarantool of its own per test module; services are started by each test with the
    settings it attacks."""
    stack = Stack(tmp_path_factory.mktemp("security"))
    process = tarantool(stack).start()
    yield stack
    process.stop()
