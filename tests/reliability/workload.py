"""Concurrent clients for the reliability tests and `make soak`: writers that record every
outcome, mixed load with latency percentiles, and the checker that reads everything back.

Every write puts one new key with a value unique to that attempt, so after any crash the
history can be checked: each acknowledged pair must be readable with exactly its value, and
any pair found must hold the value that was written for its key (never anything else).
"""

from __future__ import annotations

import asyncio
import json
import signal
import statistics
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field

import grpc
from google.protobuf import json_format

from tkv.auth.v1 import auth_pb2, auth_pb2_grpc
from tkv.kv.v1 import kv_pb2, kv_pb2_grpc

ACKED, FAILED, UNKNOWN = "acknowledged", "failed", "unknown"
# Answers that prove the write was not applied; anything else that is not a success
# (a timeout, a dropped connection, UNAVAILABLE) may or may not have been applied.
NOT_APPLIED = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.RESOURCE_EXHAUSTED}
HTTP_NOT_APPLIED = {400, 401, 413, 429}


@dataclass
class Attempt:
    key: str
    value: dict
    via: str
    outcome: str = UNKNOWN
    detail: str = ""
    at: float = 0.0  # when it was sent (time.monotonic())
    took: float = 0.0  # seconds until its answer, or the error


class HttpClient:
    """HTTP/1.1 with keep-alive over one asyncio connection; reconnects after errors."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self._reader = self._writer = None

    async def request(
        self, method: str, path: str, body: dict | None = None, token: str | None = None, timeout: float = 10.0
    ) -> tuple[int, dict]:
        try:
            return await asyncio.wait_for(self._request(method, path, body, token), timeout)
        except BaseException:
            await self.close()
            raise

    async def _request(self, method, path, body, token):
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        payload = json.dumps(body).encode() if body is not None else b""
        head = [
            f"{method} {path} HTTP/1.1",
            f"host: {self.host}",
            "content-type: application/json",
            f"content-length: {len(payload)}",
        ]
        if token:
            head.append(f"authorization: Bearer {token}")
        self._writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
        await self._writer.drain()
        status_line = await self._reader.readline()
        if not status_line:
            raise ConnectionError("connection closed")
        status = int(status_line.split()[1])
        headers = {}
        while (line := await self._reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        data = await self._reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection") == "close":
            await self.close()
        return status, json.loads(data) if data else {}

    async def close(self):
        if self._writer is not None:
            self._writer.close()
            self._reader = self._writer = None


@dataclass
class Target:
    """Where the clients go: direct gRPC ports and the gateway."""

    auth: str
    kv: str
    gateway_host: str
    gateway_port: int

    @classmethod
    def of(cls, stack) -> Target:
        return cls(f"127.0.0.1:{stack.auth_port}", f"127.0.0.1:{stack.kv_port}", "127.0.0.1", stack.gateway_port)

    def grpc_channel(self, address: str) -> grpc.aio.Channel:
        return grpc.aio.insecure_channel(address, options=[("grpc.max_receive_message_length", 64 << 20)])


async def new_token(target: Target, password: str = "Secr3t!pass") -> str:
    login = f"Load{uuid.uuid4().hex[:12]}"
    async with target.grpc_channel(target.auth) as channel:
        stub = auth_pb2_grpc.AuthServiceStub(channel)
        await stub.Register(auth_pb2.RegisterRequest(login=login, password=password, name="Anna", surname="Smith"))
        return (await stub.Login(auth_pb2.LoginRequest(login=login, password=password))).token


async def writer(
    target: Target, token: str, via: str, prefix: str, stop: asyncio.Event, attempts: list[Attempt], batch: int = 1
) -> None:
    """Writes new keys until `stop`, recording every attempt's outcome."""
    http = HttpClient(target.gateway_host, target.gateway_port) if via == "http" else None
    channel = target.grpc_channel(target.kv) if via == "grpc" else None
    stub = kv_pb2_grpc.KeyValueServiceStub(channel) if channel else None
    sequence = 0
    try:
        while not stop.is_set():
            pairs = []
            for _ in range(batch):
                sequence += 1
                pairs.append(
                    Attempt(
                        f"{prefix}-{via}-{sequence}",
                        {"seq": sequence, "nonce": uuid.uuid4().hex},
                        via,
                        at=time.monotonic(),
                    )
                )
            attempts.extend(pairs)
            data = {a.key: a.value for a in pairs}
            sent = time.monotonic()
            try:
                if stub is not None:
                    request = json_format.ParseDict({"data": data}, kv_pb2.WriteRequest())
                    response = await stub.Write(request, metadata=[("authorization", f"Bearer {token}")], timeout=5)
                    ok, skipped = True, list(response.skipped_keys)
                else:
                    status, body = await http.request("POST", "/api/write/", {"data": data}, token)
                    ok, skipped = status == 201, body.get("skipped_keys", [])
                    if not ok:
                        outcome = FAILED if status in HTTP_NOT_APPLIED else UNKNOWN
                        for attempt in pairs:
                            attempt.outcome, attempt.detail = outcome, f"HTTP {status} {body.get('message', '')}"
                            attempt.took = time.monotonic() - sent
                        await asyncio.sleep(0.05)
                        continue
                for attempt in pairs:
                    # A skipped key would mean someone else wrote it: never expected here.
                    attempt.outcome = UNKNOWN if attempt.key in skipped else ACKED
            except grpc.aio.AioRpcError as error:
                outcome = FAILED if error.code() in NOT_APPLIED else UNKNOWN
                for attempt in pairs:
                    attempt.outcome, attempt.detail = outcome, error.code().name
                    attempt.took = time.monotonic() - sent
                await asyncio.sleep(0.05)
            except (TimeoutError, OSError, ConnectionError, asyncio.IncompleteReadError, ValueError) as error:
                for attempt in pairs:
                    attempt.outcome, attempt.detail = UNKNOWN, type(error).__name__
                    attempt.took = time.monotonic() - sent
                await asyncio.sleep(0.05)
            finally:
                for attempt in pairs:
                    attempt.took = attempt.took or time.monotonic() - sent
    finally:
        if channel is not None:
            await channel.close()
        if http is not None:
            await http.close()


async def until_acknowledged(
    attempts: list[Attempt], count: int, *, since: float | None = None, timeout: float = 30.0
) -> bool:
    """Waits until `count` writes sent after `since` (time.monotonic(); default: now) have
    been acknowledged, or `timeout` passes; whether they were. A workload that has done
    this much, where a fixed sleep would only guess at it. Never raises: what the writes
    prove is for the test's assertions to judge."""
    since = time.monotonic() if since is None else since
    deadline = time.monotonic() + timeout
    while sum(a.outcome == ACKED and a.at >= since for a in attempts) < count:
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


async def until_answered(attempts: list[Attempt], count: int, timeout: float = 30.0) -> bool:
    """Waits until `count` attempts have had their answer, whatever it was."""
    deadline = time.monotonic() + timeout
    while sum(a.outcome != UNKNOWN or a.took > 0 for a in attempts) < count:
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


@dataclass
class Verdict:
    tried: int
    acknowledged: int
    failed: int
    unknown: int
    found: int
    lost: list[str] = field(default_factory=list)
    corrupted: list[str] = field(default_factory=list)
    failed_but_found: list[str] = field(default_factory=list)
    found_keys: set[str] = field(default_factory=set)

    def summary(self) -> dict:
        return {
            "tried": self.tried,
            "acknowledged": self.acknowledged,
            "failed": self.failed,
            "unknown": self.unknown,
            "found": self.found,
            "lost": len(self.lost),
            "corrupted": len(self.corrupted),
            "failed_but_found": len(self.failed_but_found),
        }


async def verify(target: Target, token: str, attempts: list[Attempt]) -> Verdict:
    """Reads every attempted key back (in batches, key by key where some are absent)."""
    stored: dict[str, dict] = {}
    async with target.grpc_channel(target.kv) as channel:
        stub = kv_pb2_grpc.KeyValueServiceStub(channel)
        metadata = [("authorization", f"Bearer {token}")]

        async def read(keys):
            response = await stub.Read(kv_pb2.ReadRequest(keys=keys), metadata=metadata, timeout=30)
            stored.update(json_format.MessageToDict(response.data))

        keys = [a.key for a in attempts]
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            try:
                await read(chunk)
            except grpc.aio.AioRpcError as error:
                if error.code() != grpc.StatusCode.NOT_FOUND:
                    raise
                for key in chunk:  # which ones are absent: one by one
                    try:
                        await read([key])
                    except grpc.aio.AioRpcError as single:
                        if single.code() != grpc.StatusCode.NOT_FOUND:
                            raise
    by_outcome = defaultdict(int)
    verdict = Verdict(len(attempts), 0, 0, 0, len(stored), found_keys=set(stored))
    for attempt in attempts:
        by_outcome[attempt.outcome] += 1
        value = stored.get(attempt.key)
        if value is not None and value != attempt.value:
            verdict.corrupted.append(attempt.key)
        if attempt.outcome == ACKED and value is None:
            verdict.lost.append(attempt.key)
        if attempt.outcome == FAILED and value is not None:
            verdict.failed_but_found.append(attempt.key)
    verdict.acknowledged, verdict.failed, verdict.unknown = by_outcome[ACKED], by_outcome[FAILED], by_outcome[UNKNOWN]
    return verdict


@dataclass
class Latencies:
    samples: defaultdict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: defaultdict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def report(self) -> dict:
        out = {}
        for operation, values in sorted(self.samples.items()):
            values = sorted(values)
            out[operation] = {
                "count": len(values),
                "p50_ms": round(1000 * statistics.median(values), 2),
                "p99_ms": round(1000 * values[min(len(values) - 1, int(0.99 * len(values)))], 2),
                "errors": len(self.errors.get(operation, [])),
            }
        return out


async def mixed_client(target: Target, via: str, stop: asyncio.Event, latencies: Latencies, index: int) -> None:
    """One client looping register -> login -> write -> read (x5) over gRPC or HTTP."""
    http = HttpClient(target.gateway_host, target.gateway_port) if via == "http" else None
    auth_channel, kv_channel = target.grpc_channel(target.auth), target.grpc_channel(target.kv)
    auth, kv = auth_pb2_grpc.AuthServiceStub(auth_channel), kv_pb2_grpc.KeyValueServiceStub(kv_channel)

    async def timed(operation, awaitable):
        started = time.perf_counter()
        try:
            result = await awaitable
        except Exception as error:
            latencies.errors[f"{via} {operation}"].append(repr(error)[:200])
            return None
        latencies.samples[f"{via} {operation}"].append(time.perf_counter() - started)
        return result

    async def via_http(method, path, body, token=None, expect=200):
        status, reply = await http.request(method, path, body, token)
        if status != expect:
            raise RuntimeError(f"HTTP {status}: {reply}")
        return reply

    round_ = 0
    try:
        while not stop.is_set():
            round_ += 1
            login = f"Mix{index}x{round_}x{uuid.uuid4().hex[:6]}"
            user = {"login": login, "password": "Secr3t!pass", "name": "Anna", "surname": "Smith"}
            keys = [f"mix-{login}-{i}" for i in range(10)]
            data = {key: {"i": i, "payload": "x" * 64} for i, key in enumerate(keys)}
            if via == "http":
                if await timed("register", via_http("POST", "/api/register/", user, expect=201)) is None:
                    continue
                reply = await timed(
                    "login",
                    via_http("POST", "/api/login/", {"login": login, "password": "Secr3t!pass"}, expect=201),
                )
                if reply is None:
                    continue
                token = reply["token"]
                await timed("write", via_http("POST", "/api/write/", {"data": data}, token, expect=201))
                for _ in range(5):
                    await timed("read", via_http("POST", "/api/read/", {"keys": keys}, token))
            else:
                if await timed("register", auth.Register(auth_pb2.RegisterRequest(**user), timeout=10)) is None:
                    continue
                reply = await timed(
                    "login", auth.Login(auth_pb2.LoginRequest(login=login, password="Secr3t!pass"), timeout=10)
                )
                if reply is None:
                    continue
                metadata = [("authorization", f"Bearer {reply.token}")]
                request = json_format.ParseDict({"data": data}, kv_pb2.WriteRequest())
                await timed("write", kv.Write(request, metadata=metadata, timeout=10))
                for _ in range(5):
                    await timed("read", kv.Read(kv_pb2.ReadRequest(keys=keys), metadata=metadata, timeout=10))
    finally:
        await auth_channel.close()
        await kv_channel.close()
        if http is not None:
            await http.close()


def rss_kib(pid: int) -> int:
    """Resident memory of a process, from /proc."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def tarantool_connections(stack) -> int:
    """Open IPROTO connections on Tarantool (the services' own, plus any probes)."""
    return int(stack.console("box.stat.net().CONNECTIONS.current"))


async def run_mixed_load(target: Target, clients: int, seconds: float) -> Latencies:
    """`clients` concurrent clients, half over direct gRPC and half over HTTP through Envoy."""
    latencies, stop = Latencies(), asyncio.Event()
    tasks = [
        asyncio.create_task(mixed_client(target, "grpc" if i % 2 == 0 else "http", stop, latencies, i))
        for i in range(clients)
    ]
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.gather(*tasks)
    return latencies


async def crash_run(
    stack,
    victims: list[str],
    writers_per_transport: int = 3,
    before: float = 1.5,
    down: float = 1.0,
    after: float = 2.5,
) -> tuple[Verdict, dict]:
    """Writers over gRPC and HTTP keep going while `victims` (names in stack.processes) are
    SIGKILLed and restarted; then every attempted key is read back."""
    target = Target.of(stack)
    token = await new_token(target)
    stop, attempts = asyncio.Event(), []
    prefix = f"crash-{uuid.uuid4().hex[:8]}"
    tasks = [
        asyncio.create_task(writer(target, token, via, f"{prefix}-{via}{i}", stop, attempts))
        for via in ("grpc", "http")
        for i in range(writers_per_transport)
    ]
    await asyncio.sleep(before)
    killed_at = time.monotonic()
    for name in victims:
        stack.processes[name].stop(signal.SIGKILL)
    await asyncio.sleep(down)
    for name in victims:
        await asyncio.to_thread(stack.processes[name].start)
    restarted_at = time.monotonic()
    await asyncio.sleep(after)
    stop.set()
    await asyncio.gather(*tasks)
    # A fresh account reads back: the check must not depend on what the crash did to the writer's.
    verdict = await verify(target, await new_token(target), attempts)
    first_ack_after = min((a.at for a in attempts if a.outcome == ACKED and a.at > restarted_at), default=None)
    return verdict, {
        **verdict.summary(),
        "killed": victims,
        "acked_before_kill": sum(a.outcome == ACKED and a.at < killed_at for a in attempts),
        "acked_after_restart": sum(a.outcome == ACKED and a.at > restarted_at for a in attempts),
        "first_ack_after_restart_s": round(first_ack_after - restarted_at, 3) if first_ack_after else None,
    }
