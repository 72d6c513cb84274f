"""Open-loop load (issue 16): requests sent at fixed intended times whatever the answers,
each timed from its *intended* send time, so that latency includes every wait a slow
server causes — in its queue, or for a free connection here — instead of the closed
loop's p99, which only restates Little's law.

This module drives HTTP/1.1; gRPC's open loop is h2load --rps (loadgen.h2load_open_loop).
h2load --rps in HTTP/1.1 mode cannot be used here: its requests took p50 26 ms at 200 req/s
where curl and a closed-loop h2load saw 2-3 ms on the same stack (the shape of Nagle's
algorithm meeting delayed ACKs; the cause was not verified). Here a request is one write
of pre-built bytes over a pool of keep-alive connections, p50 2.9 ms at 200 req/s. The
converse holds for gRPC: a grpc.aio generator cost 0.5 cores at 1,200 calls/s (h2load
0.07 at 1,855), taken from the server's 2 cores, and h2load's HTTP/2 streams are
never short at these rates (8 connections x 128 streams), so its send times are its
intended ones. The generator runs in its own process and reports its CPU.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor

# Keep-alive HTTP/1.1 connections (one request at a time each, as most HTTP clients do).
HTTP_CONNECTIONS = 64


def http_request(port: int, path: str, body: bytes, token: str) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def _read_http_response(reader: asyncio.StreamReader) -> int:
    """Reads one response; returns its status code."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:] if line)}
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    return status


async def _open_loop(send, connections: list, rate: float, seconds: float, start_at: float) -> dict:
    """Sends request i at start + i / rate on a free connection (waiting for one if all
    are busy: that wait counts too) and times it from its intended time."""
    loop = asyncio.get_running_loop()
    free: asyncio.Queue = asyncio.Queue()
    for connection in connections:
        free.put_nowait(connection)
    latencies, errors, first_error = [], 0, []
    await asyncio.sleep(max(0.0, start_at - time.time()))
    cpu_before, start = time.process_time(), loop.time()
    total = int(rate * seconds)
    pending = set()

    async def one(intended: float) -> None:
        nonlocal errors
        connection = await free.get()
        try:
            ok = await send(connection)
        except Exception as error:  # counted; the first is shown
            ok = False
            first_error.append(repr(error))
        finally:
            free.put_nowait(connection)
        if ok:
            latencies.append(loop.time() - intended)
        else:
            errors += 1

    for index in range(total):
        intended = start + index / rate
        delay = intended - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.ensure_future(one(intended))
        pending.add(task)
        task.add_done_callback(pending.discard)
    if pending:
        await asyncio.wait(pending, timeout=60)
    if first_error:
        print(f"open loop: {errors} errors, first: {first_error[0]}", flush=True)
    return {"latencies": latencies, "errors": errors + len(pending), "cpu": time.process_time() - cpu_before}


async def _http(port: int, request: bytes, rate: float, seconds: float, start_at: float) -> dict:
    connections = [await asyncio.open_connection("127.0.0.1", port) for _ in range(HTTP_CONNECTIONS)]

    async def send(connection) -> bool:
        reader, writer = connection
        writer.write(request)
        return await _read_http_response(reader) == 200

    try:
        return await _open_loop(send, connections, rate, seconds, start_at)
    finally:
        for _, writer in connections:
            writer.close()


def _in_process(kwargs: dict) -> dict:
    return asyncio.run(_http(**kwargs))


def http(port: int, request: bytes, rate: float, seconds: float) -> dict:
    """`request`: http_request's bytes, sent `rate` times a second for `seconds`. Returns
    what bench/run.py Bench.measure takes: latencies, errors, the timed window and the
    generator's CPU, plus the offered rate."""
    start_at = time.time() + 1.5  # after the process and its connections are up
    job = {"port": port, "request": request, "rate": rate, "seconds": seconds, "start_at": start_at}
    # spawn, not fork: the parent has used gRPC, whose native state must not be forked.
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        result = pool.submit(_in_process, job).result()
    return {
        "latencies": result["latencies"],
        "errors": result["errors"],
        "client_cpu_seconds": result["cpu"],
        "window": (start_at, start_at + seconds),
        "seconds": seconds,
        "offered_rps": rate,
    }
