"""Error lines the processes of a test wrote, that the test did not expect.

Every process a test tier starts (tests/stack.py) logs to a file; services running
in-process log through `logging`. After each test, the lines added since it began are
searched for errors: a service's `"level": "error"` or `"critical"` JSON line, a Python
traceback, Tarantool's ` E> ` / ` F> ` lines, Envoy's `[error]` / `[critical]` lines. A test
that provokes errors on purpose names them with `@pytest.mark.log_errors_expected(regex, ...)`.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

ERROR_LINE = re.compile(
    r'"level": "(error|critical)"'  # auth_svc, kv_svc (tkv_common/logs.py)
    r"|^Traceback \(most recent call last\)"  # anything Python printed to stderr
    r"| [EF]> "  # Tarantool: error, fatal
    r"|\]\[(error|critical)\]\["  # Envoy
)

# Every log file of a process started by tests/stack.py, in start order.
_LOGS: list[Path] = []


def register(path: Path) -> None:
    if path not in _LOGS:
        _LOGS.append(path)


def sizes() -> dict[Path, int]:
    return {path: path.stat().st_size if path.exists() else 0 for path in _LOGS}


def new_error_lines(before: dict[Path, int]) -> list[str]:
    """Error lines written since `before` (files started since count from their start)."""
    found = []
    for path in _LOGS:
        if not path.exists():
            continue
        with path.open("rb") as log:
            log.seek(before.get(path, 0))
            for line in log.read().decode(errors="replace").splitlines():
                if ERROR_LINE.search(line):
                    found.append(f"{path.parent.name}/{path.name}: {line[:2000]}")
    return found


class ErrorRecords(logging.Handler):
    """ERROR and above logged in this process (the in-process services of the integration
    and security tiers)."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        self.lines.append(f"in-process {record.name}: {text[:2000]}")


def unexpected(lines: list[str], expected: list[str]) -> list[str]:
    return [line for line in lines if not any(re.search(pattern, line) for pattern in expected)]
