"""Fixtures for every tier."""

from __future__ import annotations

import json

import pytest


@pytest.fixture
def report(capsys, request):
    """Prints a test's measurements in the test output (and `-rA` summaries) as JSON."""

    def emit(figures: dict) -> None:
        request.node.user_properties.append(("figures", figures))
        with capsys.disabled():
            print(f"\n[{request.node.name}] {json.dumps(figures, sort_keys=True)}")

    return emit
