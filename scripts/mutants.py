"""Breaks one guarantee at a time and runs the tests that claim it: each must fail.

`make mutants`. For every mutant in the catalogue (tests/mutants/), the work tree is copied
to a temporary directory, one exact piece of text is replaced in one file, and the named
tests run there. A control run on an unmutated copy must pass first, so a failure is the
mutation's doing. Each mutant ends as one of:

    killed    a named test failed on an assertion (tests/mutants/verdict.py tells);
    SURVIVED  every named test passed: a test stays green with its property gone;
    BROKEN    the tests failed some other way (a fixture, an exception, a timeout), which
              proves nothing about the property.

The script exits 0 only when every mutant is killed.

    python scripts/mutants.py            # every mutant
    python scripts/mutants.py -k sync    # those whose name contains "sync"
    python scripts/mutants.py --area ha  # those of tests/mutants/ha.py
    python scripts/mutants.py --list     # what would run
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.mutants import AREAS, MUTANTS  # noqa: E402  (the catalogue lives beside the tests)

# What a copy leaves out: state, caches and installed tools (the venv is shared).
NOT_COPIED = shutil.ignore_patterns(
    ".git", ".venv", "var", "node_modules", "__pycache__", ".pytest_cache", ".hypothesis"
)


def copy_tree(source: Path, into: Path) -> Path:
    target = into / "tree"
    shutil.copytree(source, target, ignore=NOT_COPIED, symlinks=True)
    # Installed npm packages (Swagger UI for the gateway, newman) are shared like the venv.
    modules = source / "node_modules"
    if modules.exists():
        (target / "node_modules").symlink_to(modules.resolve(), target_is_directory=True)
    return target


@dataclass(frozen=True)
class Run:
    code: int  # pytest's exit code; -1 when it timed out
    summary: str  # its last line
    output: str
    failures: tuple[dict, ...]  # what tests/mutants/verdict.py recorded

    @property
    def verdict(self) -> str:
        if self.code == 0:
            return "SURVIVED"
        if self.code == 1 and any(f["assertion"] for f in self.failures):
            return "killed"
        return "BROKEN"

    def why(self) -> str:
        if self.code == 1 and self.failures:
            return "; ".join(f"{f['test']} {f['when']}: {f['exception']}" for f in self.failures)
        return self.summary


def run_tests(tree: Path, tests: tuple[str, ...], timeout: float) -> Run:
    verdicts = tree / ".mutant-verdicts.jsonl"
    verdicts.unlink(missing_ok=True)
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-p", "tests.mutants.verdict"]
    # Every Python process the tests start imports from this copy: console scripts such as
    # `tkv` and `tkv-ha` would otherwise run the work tree's code (an editable install).
    path = os.pathsep.join(filter(None, (str(tree), os.environ.get("PYTHONPATH"))))
    environment = {**os.environ, "TKV_MUTANT_VERDICTS": str(verdicts), "PYTHONPATH": path}
    try:
        result = subprocess.run(
            [*command, *tests], cwd=tree, env=environment, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return Run(-1, f"timed out after {timeout:.0f} s", "", ())
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    summary = lines[-1] if lines else result.stderr.strip()[-200:]
    failures = tuple(json.loads(line) for line in verdicts.read_text().splitlines()) if verdicts.exists() else ()
    return Run(result.returncode, summary, result.stdout + result.stderr, failures)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", default="", help="only mutants whose name contains this")
    parser.add_argument("--area", choices=sorted(AREAS), help="only the mutants of this area (tests/mutants/AREA.py)")
    parser.add_argument("--list", action="store_true", help="list the mutants and their tests, run nothing")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per test run")
    args = parser.parse_args(argv)
    pool = AREAS[args.area] if args.area else MUTANTS
    chosen = [m for m in pool if args.k.lower() in m.name.lower()]
    if not chosen:
        print("no mutant matches", file=sys.stderr)
        return 2
    if args.list:
        for mutant in chosen:
            print(f"{mutant.name}  [{mutant.path}]\n    " + "\n    ".join(mutant.tests))
        return 0
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tkv-mutants-") as scratch:
        # Every copy comes from this one, taken now: edits to the work tree while the
        # mutants run do not leak into them.
        control = copy_tree(ROOT, Path(scratch) / "control")
        tests = tuple(dict.fromkeys(test for m in chosen for test in m.tests))
        run = run_tests(control, tests, args.timeout)
        print(f"control (no mutation, {len(tests)} test ids): {run.summary}", flush=True)
        if run.code != 0:
            print(run.output[-6000:], file=sys.stderr)
            print("the tests fail without any mutation: fix them first", file=sys.stderr)
            return 2
        outcomes: dict[str, list[str]] = {"killed": [], "SURVIVED": [], "BROKEN": []}
        for index, mutant in enumerate(chosen):
            tree = copy_tree(control, Path(scratch) / f"mutant-{index}")
            source = tree / mutant.path
            text = source.read_text()
            if text.count(mutant.old) != 1:
                print(f"{mutant.name}: the text to replace is not in {mutant.path} exactly once", file=sys.stderr)
                return 2
            source.write_text(text.replace(mutant.old, mutant.new))
            started = time.monotonic()
            run = run_tests(tree, mutant.tests, args.timeout)
            outcomes[run.verdict].append(mutant.name)
            print(f"{run.verdict:8} {mutant.name} ({time.monotonic() - started:.0f} s): {run.why()}", flush=True)
            if run.verdict == "BROKEN":
                print("    " + "\n    ".join(run.output[-3000:].splitlines()), file=sys.stderr)
            shutil.rmtree(tree)
    print(
        f"{len(outcomes['killed'])} of {len(chosen)} mutants killed, {len(outcomes['SURVIVED'])} survived, "
        f"{len(outcomes['BROKEN'])} broken, in {(time.monotonic() - began) / 60:.1f} min"
    )
    for verdict in ("SURVIVED", "BROKEN"):
        for name in outcomes[verdict]:
            print(f"  {verdict}: {name}")
    return 0 if len(outcomes["killed"]) == len(chosen) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
