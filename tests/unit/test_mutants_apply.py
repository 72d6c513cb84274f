"""`make mutants` cannot rot: every mutant's text is in its file exactly once (so it breaks
what it names, and nothing else), and every test it names exists. Fast and static: the
mutants themselves run in `make mutants`."""

import re
from pathlib import Path

import pytest

from tests.mutants import MUTANTS

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.name for m in MUTANTS])
def test_each_mutant_applies_exactly_once(mutant):
    text = (ROOT / mutant.path).read_text()
    assert text.count(mutant.old) == 1, f"{mutant.name}: found {text.count(mutant.old)} times in {mutant.path}"
    assert mutant.new != mutant.old


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.name for m in MUTANTS])
def test_each_mutant_names_tests_that_exist(mutant):
    assert mutant.tests
    for test in mutant.tests:
        path, _, name = test.partition("::")
        source = ROOT / path
        assert source.exists(), f"{mutant.name}: no {path}"
        if name:
            function = re.sub(r"\[.*\]$", "", name.split("::")[-1])
            assert re.search(rf"^\s*(async )?def {re.escape(function)}\(", source.read_text(), re.M), (
                f"{mutant.name}: no test {function} in {path}"
            )


def test_mutant_names_are_unique():
    names = [m.name for m in MUTANTS]
    assert len(names) == len(set(names))
