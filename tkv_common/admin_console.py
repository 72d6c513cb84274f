"""Tarantool's admin console (TKV_TARANTOOL_CONSOLE_SOCKET), for the operator's commands
(scripts/backup.py, scripts/failover.py). The services never use it."""

from __future__ import annotations

import json
import socket
from pathlib import Path


class Console:
    """Tarantool's admin console on a Unix socket: one Lua expression at a time."""

    def __init__(self, path: Path, timeout: float = 120.0):
        self._sock = socket.socket(socket.AF_UNIX)
        self._sock.settimeout(timeout)
        self._sock.connect(str(path))
        self._sock.recv(4096)  # the greeting

    def json(self, expression: str):
        """The value of a Lua expression, sent back as JSON (no YAML parser needed here)."""
        self._sock.sendall(f"require('json').encode({expression})\n".encode())
        reply = b""
        while not reply.endswith(b"\n...\n"):
            chunk = self._sock.recv(65536)
            if not chunk:
                raise ConnectionError("the console closed the connection")
            reply += chunk
        # YAML: "---", "- '<json>'", "...": a single-quoted scalar, '' for a quote. JSON has
        # no spaces here, so the line is never folded.
        line = reply.decode().splitlines()[1]
        if not line.startswith("- '"):
            raise RuntimeError(f"the console answered: {reply.decode().strip()}")
        return json.loads(line[3:-1].replace("''", "'"))

    def run(self, statement: str) -> None:
        """A Lua call whose results, if any, do not matter."""
        self.json(f"({statement} or true)")

    def close(self) -> None:
        self._sock.close()
