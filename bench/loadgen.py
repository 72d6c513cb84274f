"""Load generators for bench/run.py: h2load (gRPC reads), wrk (HTTP), and Python client
processes for what must vary per request (writes need new keys) or has no wire tool (the
raw Tarantool limit over asynctnt)."""

from __future__ import annotations

import asyncio
import itertools
import json
import multiprocessing
import os
import statistics
import subprocess
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import grpc
from google.protobuf import struct_pb2

from kv_svc.values import varint
from tkv.kv.v1 import kv_pb2
from tkv.kv.v2 import kv_pb2 as kv2_pb2

# Concurrency -> (connections, streams per connection) for h2load.
H2_SHAPE = {1: (1, 1), 16: (4, 4), 64: (8, 8)}
VALUE = {"name": "benchmark value", "count": 42, "tags": ["a", "b", "c"], "ok": True, "ratio": 0.25}  # ~100 B JSON


def grpc_errors_since(kv_log: Path, offset: int) -> int:
    """Calls a kv_svc answered with another code than OK since `offset` of its log (it logs
    every call as an "rpc" line with its code): h2load counts an HTTP 200 that carries a
    gRPC error as a success."""
    with open(kv_log, "rb") as log:
        log.seek(offset)
        # Only whole lines: the service may be writing its last one right now.
        lines = [json.loads(line) for line in log if line.startswith(b"{") and line.endswith(b"\n")]
    return sum(1 for line in lines if line.get("msg") == "rpc" and line.get("code") != "OK")


def percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))] if sorted_values else 0.0


def summary(latencies_s: list[float], seconds: float, batch: int, errors: int) -> dict:
    values = sorted(latencies_s)
    count = len(values)
    return {
        "requests": count,
        "rps": round(count / seconds, 1),
        "keys_per_s": round(count * batch / seconds, 1),
        "p50_ms": round(1000 * statistics.median(values), 3) if values else None,
        "p99_ms": round(1000 * percentile(values, 0.99), 3) if values else None,
        "errors": errors,
    }


def grpc_frame(message: bytes) -> bytes:
    return b"\x00" + len(message).to_bytes(4, "big") + message


def h2load(port: int, path: str, message: bytes, token: str, concurrency: int, seconds: float) -> dict:
    """Unary gRPC with one fixed request, closed loop: each of `concurrency` streams sends
    its next request when the last is answered. h2load counts HTTP 200 even for gRPC
    errors, so the caller checks the service's access log for non-OK codes."""
    connections, streams = H2_SHAPE.get(concurrency, (concurrency, 1))
    return _h2load(
        port, path, grpc_frame(message), _grpc_headers(token), ["-c", str(connections), "-m", str(streams)], seconds
    )


# gRPC's open loop (bench/openloop.py says why h2load here, and not for HTTP/1.1): enough
# HTTP/2 streams that a call never waits for one at the loads measured, so each is sent
# on its connection's --rps timer.
OPEN_LOOP_SHAPE = (8, 128)


def h2load_open_loop(port: int, path: str, message: bytes, token: str, rate: float, seconds: float) -> dict:
    """Unary gRPC at a fixed offered `rate` a second, whatever the answers."""
    connections, streams = OPEN_LOOP_SHAPE
    shape = ["-c", str(connections), "-m", str(streams), f"--rps={rate / connections:.3f}"]
    result = _h2load(port, path, grpc_frame(message), _grpc_headers(token), shape, seconds)
    result.update(offered_rps=rate, seconds=max(1, round(seconds)))
    return result


def _grpc_headers(token: str) -> list[str]:
    return ["content-type: application/grpc", "te: trailers", f"authorization: Bearer {token}"]


def _h2load(port: int, path: str, body: bytes, headers: list[str], shape: list[str], seconds: float) -> dict:
    with tempfile.TemporaryDirectory() as directory:
        body_file, log = Path(directory) / "body", Path(directory) / "log"
        body_file.write_bytes(body)
        header_args = [arg for header in headers for arg in ("-H", header)]
        result = subprocess.run(
            [
                "h2load",
                "-D",
                str(max(1, round(seconds))),  # whole seconds only
                *shape,
                "-t",
                "1",
                "-d",
                str(body_file),
                *header_args,
                "--log-file",
                str(log),
                f"http://127.0.0.1:{port}{path}",
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
        )
        if result.returncode != 0:
            raise RuntimeError(f"h2load failed: {result.stderr[-500:]}")
        rows = [line.split("\t") for line in log.read_text().splitlines() if line]
    latencies = [int(row[2]) / 1e6 for row in rows if row[1] == "200"]
    return {"latencies": latencies, "http_errors": sum(row[1] != "200" for row in rows)}


WRK_SCRIPT = """
local token, batch, mode, prefix = "%(token)s", %(batch)d, "%(mode)s", "%(prefix)s"
local value = [[%(value)s]]
local counter, thread_id = 0, 0
local read_body
-- Written keys start with a run id from Python: wrk's math.random is not seeded, so ids
-- drawn here repeat from run to run, and a repeated v1 write is a cheap skip, not a write.
local threads, all_threads = 0, {}
setup = function(thread)
  threads = threads + 1
  thread:set("id", "%(run)s-" .. threads)
  table.insert(all_threads, thread)
end
-- A delete that found a key missing means the prefill ran out: counted as an error.
misses = 0
if mode == "v2delete" then
  response = function(status, headers, body)
    if body:find('"missing_keys"', 1, true) then misses = misses + 1 end
  end
end
init = function(args)
  thread_id = id
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. token
  if mode == "read" or mode == "v2read" then
    local keys = {}
    for i = 1, batch do keys[i] = '"' .. prefix .. i .. '"' end
    read_body = '{"keys": [' .. table.concat(keys, ",") .. ']}'
  end
end
request = function()
  if mode == "read" then return wrk.format(nil, "/api/read/", nil, read_body) end
  if mode == "v2read" then return wrk.format(nil, "/v2/namespaces/shared/pairs:batchGet", nil, read_body) end
  if mode == "v2list" then
    return wrk.format("GET", "/v2/namespaces/shared/pairs?page_size=" .. batch .. "&prefix=" .. prefix, nil, nil)
  end
  counter = counter + 1
  if mode == "v2delete" then
    -- The keys loadgen.prefill wrote for prefix `thread_id`: batch_keys' sequence, from 0.
    local keys = {}
    for i = 1, batch do keys[i] = '"' .. thread_id .. '-' .. (counter - 1) .. '-' .. (i - 1) .. '"' end
    return wrk.format(nil, "/v2/namespaces/me/pairs:batchDelete", nil, '{"keys": [' .. table.concat(keys, ",") .. ']}')
  end
  local pairs = {}
  for i = 1, batch do
    local key = 'w' .. thread_id .. '-' .. counter .. '-' .. i
    if mode == "v2write" then
      pairs[i] = '{"key": "' .. key .. '", "value": ' .. value .. '}'
    else
      pairs[i] = '"' .. key .. '": ' .. value
    end
  end
  if mode == "v2write" then
    return wrk.format(nil, "/v2/namespaces/me/pairs:batchPut", nil, '{"pairs": [' .. table.concat(pairs, ",") .. ']}')
  end
  return wrk.format(nil, "/api/write/", nil, '{"data": {' .. table.concat(pairs, ",") .. '}}')
end
done = function(summary, latency, requests)
  local missed = 0
  for _, thread in ipairs(all_threads) do missed = missed + (thread:get("misses") or 0) end
  print(string.format("RESULT %%d %%d %%d %%d %%d", summary.requests, summary.errors.status + missed,
    latency:percentile(50), latency:percentile(99), summary.duration))
end
"""


def wrk_threads(concurrency: int) -> int:
    return min(2, concurrency)


def wrk(
    port: int, token: str, mode: str, batch: int, prefix: str, concurrency: int, seconds: float, run: str = ""
) -> dict:
    """HTTP/1.1 keep-alive through Envoy; non-2xx answers count as errors. `mode`: read,
    write (v1), v2read (BatchGetPairs), v2write (BatchPutPairs), v2list (ListPairs of
    `batch` keys under `prefix`), v2delete (BatchDeletePairs of the keys prefill wrote for
    prefixes `run`-1 ... `run`-threads). `run`: the id written keys start with (random)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            WRK_SCRIPT
            % {
                "token": token,
                "batch": batch,
                "mode": mode,
                "prefix": prefix,
                "value": json.dumps(VALUE),
                "run": run or uuid.uuid4().hex[:12],
            }
        )
    try:
        result = subprocess.run(
            [
                "wrk",
                "-t",
                str(wrk_threads(concurrency)),
                "-c",
                str(concurrency),
                "-d",
                f"{max(1, round(seconds))}s",
                "--timeout",
                "10s",
                "-s",
                script.name,
                f"http://127.0.0.1:{port}",
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
        )
    finally:
        os.unlink(script.name)
    line = next((line for line in result.stdout.splitlines() if line.startswith("RESULT")), None)
    if line is None:
        raise RuntimeError(f"wrk failed ({result.returncode}): {result.stdout!r} {result.stderr!r}")
    requests, status_errors, p50_us, p99_us, duration_us = map(int, line.split()[1:])
    socket_errors = "Socket errors" in result.stdout
    return {
        "requests": requests,
        "errors": status_errors + int(socket_errors),
        "p50_ms": p50_us / 1000,
        "p99_ms": p99_us / 1000,
        "seconds": duration_us / 1e6,
    }


# --- Python client processes -------------------------------------------------------------


def value_bytes() -> bytes:
    """VALUE as an encoded google.protobuf.Value: what kv_svc stores and what every write
    case sends."""
    value = struct_pb2.Value()
    value.struct_value.update(VALUE)
    return value.SerializeToString()


def batch_keys(prefix: str, batch: int):
    """Endless lists of `batch` keys never used before; the same sequence for the same
    prefix (the delete case deletes what a prefill wrote)."""
    for n in itertools.count():
        yield [f"{prefix}-{n}-{i}" for i in range(batch)]


def write_requests(batch: int, api: str = "v1", prefix: str | None = None):
    """Endless encoded WriteRequests (v1) or BatchPutPairsRequests (v2, namespace `me`) of
    `batch` new keys, ~65 µs per 100 keys.

    Spliced from bytes: building messages field by field cost the client more CPU than
    the server spent on them."""
    raw = value_bytes()
    for keys in batch_keys(prefix or uuid.uuid4().hex[:10], batch):
        if api == "v1":
            yield struct_message(keys, raw)
        else:
            yield b"\x0a\x02me" + b"".join(
                _field(b"\x12", _field(b"\x0a", key.encode()) + _field(b"\x12", raw)) for key in keys
            )


def delete_requests(batch: int, prefix: str):
    """Encoded BatchDeletePairsRequests (namespace `me`) of the keys write_requests(batch,
    "v2", prefix) wrote, in the same order."""
    for keys in batch_keys(prefix, batch):
        yield b"\x0a\x02me" + b"".join(_field(b"\x12", key.encode()) for key in keys)


def struct_message(keys: list[str], value: bytes) -> bytes:
    """A v1 WriteRequest of `keys`, each with the encoded Value `value`; also a ReadResponse
    answering them, which has the same wire shape: data (field 1, a Struct) of one map entry
    (field 1) per key, each its key (field 1) and value (field 2). Spliced by hand, from
    the public protos' field numbers (tests/unit/test_bench_order.py parses it back)."""
    entries = b"".join(_field(b"\x0a", _field(b"\x0a", key.encode()) + _field(b"\x12", value)) for key in keys)
    return _field(b"\x0a", entries)


def _field(tag: bytes, payload: bytes) -> bytes:
    return tag + varint(len(payload)) + payload


async def _timed_clients(concurrency: int, seconds: float, start_at: float, next_call, succeeded=lambda result: True):
    """`concurrency` clients, each awaiting `next_call()` from wall-clock `start_at` (the
    same for every client process) until `seconds` pass. Building the request happens in
    next_call, before the call's clock; a call that raises or fails `succeeded` is an
    error. Returns (latencies, errors, CPU seconds this process used while timed)."""
    latencies, errors, first_error = [], 0, []
    await asyncio.sleep(max(0.0, start_at - time.time()))
    deadline = time.monotonic() + seconds
    cpu_before = time.process_time()

    async def client():
        nonlocal errors
        while time.monotonic() < deadline:
            call = next_call()
            started = time.perf_counter()
            try:
                ok = succeeded(await call)
            except Exception as error:  # counted: a Tarantool error would not pickle back to us
                ok = False
                first_error.append(repr(error))
            if ok:
                latencies.append(time.perf_counter() - started)
            else:
                errors += 1

    await asyncio.gather(*(client() for _ in range(concurrency)))
    cpu = time.process_time() - cpu_before
    if first_error:
        print(f"load generator: {errors} errors, first: {first_error[0]}", flush=True)
    return latencies, errors, cpu


# (gRPC method, response type, success check) of each write-like case.
WRITE_CALLS = {
    "v1": ("/tkv.kv.v1.KeyValueService/Write", kv_pb2.WriteResponse, lambda r: not r.skipped_keys),
    "v2": ("/tkv.kv.v2.KeyValueService/BatchPutPairs", kv2_pb2.BatchPutPairsResponse, lambda r: r.revision > 0),
    "v2delete": (
        "/tkv.kv.v2.KeyValueService/BatchDeletePairs",
        kv2_pb2.BatchDeletePairsResponse,
        # Every key was written by the prefill: one missing would mean the prefill ran out.
        lambda r: not r.missing_keys,
    ),
}


async def _grpc_writes(address, token, batch, concurrency, seconds, start_at, api="v1", prefix=None, connections=4):
    """Writes (or v2 deletes) over `connections` HTTP/2 connections, like h2load's reads:
    the kernel spreads connections, not calls, over the workers sharing the port."""
    method, response_type, succeeded = WRITE_CALLS[api]
    requests = delete_requests(batch, prefix) if api == "v2delete" else write_requests(batch, api, prefix)
    # A local subchannel pool: channels to one address would otherwise share one connection.
    channels = [
        grpc.aio.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)]) for _ in range(connections)
    ]
    calls = itertools.cycle(
        channel.unary_unary(method, request_serializer=None, response_deserializer=response_type.FromString)
        for channel in channels
    )
    metadata = (("authorization", f"Bearer {token}"),)
    try:
        return await _timed_clients(
            concurrency,
            seconds,
            start_at,
            lambda: next(calls)(next(requests), metadata=metadata, timeout=30),
            # v1: a skipped key would mean the key was not new: never expected here.
            succeeded,
        )
    finally:
        for channel in channels:
            await channel.close()


# What kv_svc passes its stored functions besides the request (kv_svc/storage.py), with
# the bench stack's settings (bench/run.py): the response limit and the write limits.
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
WRITE_LIMITS = {"max_pairs": 10**9, "max_bytes": 10**12, "high_water": 0.9}


async def prefill(host, port, user, password, token_args, batch, batches, prefix) -> None:
    """Writes `batches` v2 batches of write_requests' keys for `prefix` into the caller's
    namespace, straight through the stored function: the delete case's victims."""
    import asynctnt

    conn = asynctnt.Connection(
        host=host, port=port, username=user, password=password, fetch_schema=False, auto_refetch_schema=False
    )
    await conn.connect()
    raw = value_bytes()
    try:
        for keys in itertools.islice(batch_keys(prefix, batch), batches):
            items = [[key, raw, -1, 0] for key in keys]
            answer = await conn.call("tkv.kv_put", [*token_args, "me", items, WRITE_LIMITS], timeout=30)
            assert answer.body[0] == "ok", answer.body
    finally:
        await conn.disconnect()


async def _limit(host, port, user, password, function, token_args, batch, concurrency, seconds, start_at, read_keys):
    import asynctnt

    conn = asynctnt.Connection(
        host=host, port=port, username=user, password=password, fetch_schema=False, auto_refetch_schema=False
    )
    await conn.connect()
    prefix, counter, raw = uuid.uuid4().hex[:10], 0, value_bytes()

    def next_call():
        nonlocal counter
        if function == "tkv.kv_read":
            # As kv_svc calls it: the values alone (values_only).
            return conn.call(function, [*token_args, read_keys, MAX_RESPONSE_BYTES, True], timeout=30)
        counter += 1
        pairs = [[f"{prefix}-{counter}-{i}", raw] for i in range(batch)]
        return conn.call(function, [*token_args, pairs, WRITE_LIMITS], timeout=30)

    try:
        # Both answer 'ok' first; kv_write then lists skipped keys (none expected: every key is new).
        if function == "tkv.kv_write":
            return await _timed_clients(
                concurrency, seconds, start_at, next_call, lambda r: r.body[0] == "ok" and not r.body[1]
            )
        return await _timed_clients(concurrency, seconds, start_at, next_call, lambda r: r.body[0] == "ok")
    finally:
        await conn.disconnect()


def _in_process(kind, kwargs):
    if kind == "register":
        return asyncio.run(_registers(**kwargs))
    if kind == "grpc_write":
        return asyncio.run(_grpc_writes(**kwargs))
    return asyncio.run(_limit(**kwargs))


def run_python_clients(kind: str, processes: int, concurrency: int, seconds: float, **kwargs) -> dict:
    """`concurrency` clients spread over `processes` OS processes; latencies merged. The
    result names the timed window, for the caller to measure the server's CPU in it."""
    shares = [concurrency // processes + (1 if i < concurrency % processes else 0) for i in range(processes)]
    shares = [share for share in shares if share]
    # Every process starts its clock at the same moment, after all have started up.
    start_at = time.time() + 1.5
    jobs = [dict(kwargs, concurrency=share, seconds=seconds, start_at=start_at) for share in shares]
    if kwargs.get("prefix"):
        # One key sequence per process (delete_requests): `prefix`-0, `prefix`-1, ...
        for index, job in enumerate(jobs):
            job["prefix"] = f"{kwargs['prefix']}-{index}"
    # spawn, not fork: this process has used gRPC, whose native state must not be forked
    # (a forked client crashed now and then).
    with ProcessPoolExecutor(len(jobs), mp_context=multiprocessing.get_context("spawn")) as pool:
        results = list(pool.map(_in_process, [kind] * len(jobs), jobs))
    return {
        "latencies": [value for part, _, _ in results for value in part],
        "errors": sum(errors for _, errors, _ in results),
        "client_cpu_seconds": sum(cpu for _, _, cpu in results),
        "window": (start_at, start_at + seconds),
    }


async def _registers(address, concurrency, seconds, start_at):
    from tkv.auth.v1 import auth_pb2, auth_pb2_grpc

    async with grpc.aio.insecure_channel(address) as channel:
        stub = auth_pb2_grpc.AuthServiceStub(channel)
        prefix, counter = uuid.uuid4().hex[:12], 0

        def next_call():
            nonlocal counter
            counter += 1
            login = f"B{prefix}{counter}"
            request = auth_pb2.RegisterRequest(login=login, password="Secr3t!pass", name="Anna", surname="Smith")
            return stub.Register(request, timeout=30)

        return await _timed_clients(concurrency, seconds, start_at, next_call)


def _argon2_verifications(policy: dict, seconds: float) -> int:
    from passlib.hash import argon2

    hasher = argon2.using(type="ID", **policy)
    stored = hasher.hash("Secr3t!pass")
    done, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        hasher.verify("Secr3t!pass", stored)
        done += 1
    return done


def raw_argon2_rate(policy: dict, processes: int, seconds: float) -> float:
    """argon2 verifications per second on every core, no service in between: the login ceiling."""
    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        counts = list(pool.map(_argon2_verifications, [policy] * processes, [seconds] * processes))
    return sum(counts) / seconds
