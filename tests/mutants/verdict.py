"""pytest plugin for scripts/mutants.py: records how each test failed, so a mutant counts
as killed only when a test fails on an assertion, not when a fixture, a port or a log scan
breaks.

Loaded with `-p tests.mutants.verdict`; writes one JSON line per failed test phase to the
file named by TKV_MUTANT_VERDICTS.
"""

from __future__ import annotations

import json
import os

import pytest

# An assertion, or pytest's own failure (pytest.raises that saw nothing, pytest.fail).
ASSERTIONS = (AssertionError, pytest.fail.Exception)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    path = os.environ.get("TKV_MUTANT_VERDICTS")
    if not path or not report.failed:
        return
    assertion = report.when == "call" and call.excinfo is not None and call.excinfo.errisinstance(ASSERTIONS)
    line = {
        "test": item.nodeid,
        "when": report.when,
        "assertion": bool(assertion),
        "exception": call.excinfo.typename if call.excinfo is not None else "",
    }
    with open(path, "a") as verdicts:
        verdicts.write(json.dumps(line) + "\n")
