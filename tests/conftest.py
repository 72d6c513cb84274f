"""Fixtures for every tier."""

from __future__ import annotations

import json
import logging

import pytest

from tests import log_scan


@pytest.fixture
def report(capsys, request):
    """Prints a test's measurements in the test output (and `-rA` summaries) as JSON."""

    def emit(figures: dict) -> None:
        request.node.user_properties.append(("figures", figures))
        with capsys.disabled():
            print(f"\n[{request.node.name}] {json.dumps(figures, sort_keys=True)}")

    return emit


@pytest.fixture(autouse=True)
def no_unexpected_errors_in_logs(request):
    """Fails a test whose processes logged an error or a traceback it did not expect
    (tests/log_scan.py); `@pytest.mark.log_errors_expected(regex, ...)` names the expected."""
    before = log_scan.sizes()
    records = log_scan.ErrorRecords()
    logging.getLogger().addHandler(records)
    try:
        yield
    finally:
        logging.getLogger().removeHandler(records)
    expected = [pattern for mark in request.node.iter_markers("log_errors_expected") for pattern in mark.args]
    unexpected = log_scan.unexpected(log_scan.new_error_lines(before) + records.lines, expected)
    if unexpected:
        pytest.fail("errors in the logs that the test did not expect:\n" + "\n".join(unexpected[:20]), pytrace=False)
