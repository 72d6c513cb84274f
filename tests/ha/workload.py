"""Clients for the HA fault tests: writers through the gateway (v1 and v2), recorded into a
tests/ha/history.py History, and write probes sent to every node's console at once.

- v1 writers put new keys (v1 never overwrites), in `shared`.
- v2 writers cycle over a few keys of their own namespace, putting a new value each time
  and reading another of their keys between puts, so versions and reads are checked too.
- The probe writes a marker into `counters` on every node in the same round,
  through the admin console (no network in between): a node takes it only if writable.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tests.reliability.workload import HttpClient

from .history import ACKED, FAILED, UNKNOWN, History, Op, ProbeRound

PASSWORD = "Secr3t!pass"
# Answers that prove a write was not applied; anything else may or may not have been.
NOT_APPLIED = {400, 401, 403, 404, 409, 413, 429}


@dataclass
class Gateway:
    host: str
    port: int

    async def account(self) -> tuple[str, str]:
        """A new user and its token (retrying while the store is unavailable)."""
        http = HttpClient(self.host, self.port)
        login = "ha" + uuid.uuid4().hex[:12]
        try:
            for _ in range(200):
                status, body = await http.request(
                    "POST", "/api/register/", {"login": login, "password": PASSWORD, "name": "Anna", "surname": "Smith"}
                )
                if status in (201, 400):  # 400: registered by an earlier try that timed out
                    status, body = await http.request("POST", "/api/login/", {"login": login, "password": PASSWORD})
                    if status == 201:
                        return login, body["token"]
                await asyncio.sleep(0.1)
            raise RuntimeError(f"could not sign in: {status} {body}")
        finally:
            await http.close()


def v2_path(key: str) -> str:
    return f"/v2/namespaces/me/pairs/{urllib.parse.quote(key, safe='')}"


@dataclass
class Writers:
    gateway: Gateway
    history: History
    v1: int = 4
    v2: int = 4
    keys_per_v2_writer: int = 5
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    prefix: str = field(default_factory=lambda: f"ha-{uuid.uuid4().hex[:8]}")
    token: str = ""

    async def run(self) -> None:
        if not self.token:
            _, self.token = await self.gateway.account()
        tasks = [asyncio.create_task(self._v1(i)) for i in range(self.v1)]
        tasks += [asyncio.create_task(self._v2(i)) for i in range(self.v2)]
        await asyncio.gather(*tasks)

    async def _call(self, http: HttpClient, op: Op, method: str, path: str, body) -> tuple[int, dict] | None:
        op.start = time.monotonic()
        self.history.ops.append(op)
        try:
            status, reply = await http.request(method, path, body, self.token, timeout=5)
        except (TimeoutError, OSError, ConnectionError, asyncio.IncompleteReadError, ValueError) as error:
            op.end, op.outcome, op.detail = time.monotonic(), UNKNOWN, type(error).__name__
            return None
        op.end = time.monotonic()
        op.detail = f"HTTP {status}"
        return status, reply

    async def _v1(self, index: int) -> None:
        http = HttpClient(self.gateway.host, self.gateway.port)
        sequence = 0
        try:
            while not self.stop.is_set():
                sequence += 1
                key = f"{self.prefix}-v1-{index}-{sequence}"
                value = {"seq": sequence, "nonce": uuid.uuid4().hex}
                op = Op(f"v1-{index}", "write", key, value)
                answer = await self._call(http, op, "POST", "/api/write/", {"data": {key: value}})
                if answer is not None:
                    status, body = answer
                    if status == 201 and key not in body.get("skipped_keys", []):
                        op.outcome = ACKED
                    else:
                        op.outcome = FAILED if status in NOT_APPLIED else UNKNOWN
                if op.outcome != ACKED:
                    await asyncio.sleep(0.05)
        finally:
            await http.close()

    async def _v2(self, index: int) -> None:
        http = HttpClient(self.gateway.host, self.gateway.port)
        keys = [f"{self.prefix}-v2-{index}-{k}" for k in range(self.keys_per_v2_writer)]
        sequence = 0
        try:
            while not self.stop.is_set():
                sequence += 1
                key = keys[sequence % len(keys)]
                value = {"seq": sequence, "nonce": uuid.uuid4().hex}
                op = Op(f"v2-{index}", "write", key, value)
                answer = await self._call(http, op, "PUT", v2_path(key), value)
                if answer is not None:
                    status, body = answer
                    if status == 200:
                        op.outcome, op.version = ACKED, int(body["revision"])
                    else:
                        op.outcome = FAILED if status in NOT_APPLIED else UNKNOWN
                read_key = keys[(sequence + 2) % len(keys)]
                read = Op(f"v2-{index}", "read", read_key)
                answer = await self._call(http, read, "GET", v2_path(read_key), None)
                if answer is not None:
                    status, body = answer
                    if status == 200 and "version" in body:
                        read.outcome, read.value, read.version = ACKED, body.get("value"), int(body["version"])
                    elif status == 404:
                        read.outcome = ACKED
                    else:
                        read.outcome = FAILED
                if op.outcome != ACKED:
                    await asyncio.sleep(0.05)
        finally:
            await http.close()

    async def final_values(self) -> dict:
        """Every written key's value now (absent keys left out), read through the gateway."""
        http = HttpClient(self.gateway.host, self.gateway.port)
        found: dict = {}
        try:
            keys = sorted({op.key for op in self.history.ops if op.kind == "write"})
            v1 = [k for k in keys if "-v1-" in k]
            for start in range(0, len(v1), 500):
                chunk = v1[start : start + 500]
                status, body = await _retry(
                    http, "POST", "/v2/namespaces/shared/pairs:batchGet", {"keys": chunk}, self.token
                )
                assert status == 200, (status, body)
                found.update({pair["key"]: pair["value"] for pair in body.get("pairs", [])})
            for key in (k for k in keys if "-v2-" in k):
                status, body = await _retry(http, "GET", v2_path(key), None, self.token)
                if status == 200:
                    found[key] = body["value"]
                else:
                    assert status == 404, (status, body)
        finally:
            await http.close()
        return found


async def _retry(http: HttpClient, method: str, path: str, body, token: str, attempts: int = 100):
    for _ in range(attempts):
        try:
            status, reply = await http.request(method, path, body, token, timeout=5)
        except (TimeoutError, OSError, ConnectionError, asyncio.IncompleteReadError):
            status, reply = 0, {}
        if status not in (0, 503):
            return status, reply
        await asyncio.sleep(0.1)
    return status, reply


class Console:
    """A node's admin console, asynchronous; None on any failure (the node is down)."""

    def __init__(self, path: Path):
        self.path = path
        self._reader = self._writer = None

    async def eval(self, expression: str, timeout: float = 1.0):
        try:
            async with asyncio.timeout(timeout):
                if self._writer is None:
                    self._reader, self._writer = await asyncio.open_unix_connection(str(self.path))
                    await self._reader.readline()
                    await self._reader.readline()
                self._writer.write(f"require('json').encode({expression})\n".encode())
                await self._writer.drain()
                reply = (await self._reader.readuntil(b"\n...\n")).decode().splitlines()[1]
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            self.close()
            return None
        if not reply.startswith("- '"):
            return None
        return json.loads(reply[3:-1].replace("''", "'"))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


# Writes a marker into `counters` (synchronous in sync mode: acknowledged only with the
# quorum, as a client's write); true if the node acknowledged it.
PROBE = (
    "(function() if box.info.ro then return false end "
    "return (pcall(box.space.counters.replace, box.space.counters, {'tkv_ha_probe', %d})) end)()"
)


async def probe_rounds(consoles: dict[str, Console], history: History, stop: asyncio.Event, every: float = 0.05):
    """A write probe to every node at once, every `every` seconds, until `stop`."""
    sequence = 0
    while not stop.is_set():
        sequence += 1
        start = time.monotonic()
        answers = await asyncio.gather(*(console.eval(PROBE % sequence) for console in consoles.values()))
        accepted = [name for name, answer in zip(consoles, answers, strict=True) if answer is True]
        history.rounds.append(ProbeRound(start, time.monotonic(), accepted))
        await asyncio.sleep(every)


def write_gap(history: History, since: float) -> float:
    """The longest time from `since` (the fault) on in which no write was acknowledged:
    how long writes failed (eight writers keep writes in flight all the time)."""
    acked = sorted(op.end for op in history.acked("write"))
    before = max((t for t in acked if t <= since), default=since)
    after = [t for t in acked if t > since]
    if not after:
        return float("inf")
    moments = [before, *after]
    return max(b - a for a, b in itertools.pairwise(moments))


def first_ack_after(history: History, since: float) -> float | None:
    later = [op.end for op in history.acked("write") if op.start > since]
    return min(later) - since if later else None


async def read_back(gateway: Gateway, token: str, history: History, sample: int = 20) -> dict:
    """Reads up to `sample` acknowledged keys through the gateway now; the answers by
    HTTP status, and how many values matched what was acknowledged."""
    http = HttpClient(gateway.host, gateway.port)
    statuses: dict[str, int] = {}
    matched = 0
    try:
        acked = {op.key: op for op in history.acked("write") if "-v1-" in op.key}
        for key in list(acked)[-sample:]:
            try:
                status, body = await http.request("POST", "/api/read/", {"keys": [key]}, token, timeout=5)
            except (TimeoutError, OSError, ConnectionError, asyncio.IncompleteReadError):
                status, body = 0, {}
            statuses[str(status)] = statuses.get(str(status), 0) + 1
            matched += status == 200 and body.get("data", {}).get(key) == acked[key].value
    finally:
        await http.close()
    return {"statuses": statuses, "matched": matched}
