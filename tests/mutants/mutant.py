"""One mutation: one exact piece of text replaced in one file, and the tests that must fail."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str
    # Must occur exactly once in `path` (tests/unit/test_mutants_apply.py holds every
    # mutant to it), so a mutant breaks what it names or stops `make test`, never something else.
    old: str
    new: str
    # Each node id must exist; the mutant is killed only when one of them fails on an assertion.
    tests: tuple[str, ...]
