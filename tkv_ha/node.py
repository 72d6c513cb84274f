"""The agent's line to its own Tarantool: the admin console (a Unix socket), asynchronous.

Only the calls of tarantool/tkv/ha.lua go through here. The console is the one door no
service user has, and it works before the node lets any client or peer in.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from .decision import NodeState


class NodeUnavailable(Exception):
    """The node's console did not answer (the node is down, starting, or hung)."""

    def __init__(self, message: str, *, down: bool = False):
        super().__init__(message)
        # True only when nothing listens on the console: the process is gone, so it
        # serves no one. A timeout proves nothing of the kind (a hung node may wake up).
        self.down = down


class Node:
    def __init__(self, console: Path, timeout: float = 2.0):
        self._path = console
        self._timeout = timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()

    async def _eval(self, expression: str, timeout: float | None = None):
        async with self._lock:
            try:
                return await asyncio.wait_for(self._eval_locked(expression), timeout or self._timeout)
            except (FileNotFoundError, ConnectionRefusedError) as error:
                await self.close()
                raise NodeUnavailable(f"{self._path}: {type(error).__name__}: {error}", down=True) from None
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ConnectionError) as error:
                await self.close()
                raise NodeUnavailable(f"{self._path}: {type(error).__name__}: {error}") from None
            except asyncio.CancelledError:
                # A reply may be under way: the next call must not read it as its own.
                await self.close()
                raise

    async def _eval_locked(self, expression: str):
        if self._writer is None:
            # A node's state is small, but a rebuild's summary may not be: no 64 KiB cap.
            self._reader, self._writer = await asyncio.open_unix_connection(str(self._path), limit=1 << 24)
            await self._reader.readline()  # the greeting: version, then the instance's uuid
            await self._reader.readline()
        self._writer.write(f"require('json').encode({expression})\n".encode())
        await self._writer.drain()
        reply = await self._reader.readuntil(b"\n...\n")
        # YAML: "---", "- '<json>'", "...": a single-quoted scalar, '' for a quote.
        line = reply.decode().splitlines()[1]
        if not line.startswith("- '"):
            raise RuntimeError(f"the console answered: {reply.decode().strip()}")
        return json.loads(line[3:-1].replace("''", "'"))

    async def state(self) -> NodeState:
        return NodeState.from_dict(await self._eval("require('tkv.ha').state()"))

    async def hold(self, deadline: float) -> bool:
        """Extends the node's writable time to `deadline` (time.monotonic(): the node's
        clock.monotonic() is the same clock); whether it is still writable."""
        return bool(await self._eval(f"require('tkv.ha').hold({deadline:.6f})"))

    async def promote(self, deadline: float, timeout: float) -> bool:
        """Settles the synchronous queue and takes writes until `deadline`; whether writable."""
        return bool(await self._eval(f"require('tkv.ha').promote({deadline:.6f})", timeout=timeout))

    async def demote(self, why: str, keep_queue: bool = False) -> bool:
        """Read-only now; whether it is. `keep_queue`: let waiting writes be confirmed."""
        keep = "true" if keep_queue else "false"
        return bool(await self._eval(f"require('tkv.ha').demote({json.dumps(why)}, {keep})"))

    async def unfollow(self) -> None:
        await self._eval("require('tkv.ha').unfollow()")

    async def follow(self, address: str) -> bool:
        """Replicates from the leader's host:port only."""
        return bool(await self._eval(f"require('tkv.ha').follow({json.dumps(address)})"))

    async def rows_past(self, vclock: dict[str, int]) -> dict:
        """A summary of this node's rows past `vclock` (the leader's), for the log: their
        count, LSN ranges and spaces; no keys, no values."""
        table = "{" + ", ".join(f"[{json.dumps(k)}] = {int(v)}" for k, v in vclock.items()) + "}"
        summary = await self._eval(f"require('tkv.ha').rows_past({table})", timeout=30)
        return summary if isinstance(summary, dict) else {}

    async def rebuild(self, why: str) -> None:
        await self._eval(f"require('tkv.ha').rebuild({json.dumps(why)})")

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None
