"""Watch fan-out (issue 12): W watchers on one prefix and one writer putting at a fixed
rate, open loop (each put is sent at its intended time whatever the answers, so latency
includes any queueing). The writer runs in a process of its own, being another client
than the watchers: in their process its puts waited behind their reads in one event loop
(a put's way in p99 36 ms against 16 ms, docs/watch.md). Every stored put must reach
every watcher, in order: after the last answer the writer puts an end key, each watcher
reads up to it, and the keys the store then lists under the prefix are what each must
have seen (a failed put may or may not have been stored; the run counts failed puts on
their own).

    python -m bench.fanout [--watchers 100] [--rate 1000] [--seconds 5] [--watcher-processes N]
    python -m bench.fanout --idle 1000

runs it on a stack of its own (as `make bench` does, which also runs it); prints one JSON
object: deliveries, delivery latency (intended send time of the put -> event received by a
watcher) p50/p99/max and its two halves (-> the put's stored call ran, by the pair's
update_time; -> received), how late the generator started its puts, each put's round trip
(intended send -> answer; with no watcher, what the box alone does to a put), kv_svc's own
lag per message from its `tkv_watch_lag_seconds` (on a stack of its own: `run_on`), and
the CPU per delivered event of each server process. With `--idle N`: N watches that see no change
for 30 s, on one kv_svc process: its memory per watch and the CPU they cost idle.

The watchers read their streams in this process (as `make bench` runs them) or, with
`--watcher-processes N`, in N processes of their own: on fresh stacks that changed
nothing measurable (docs/watch.md), so one process is not what bounds the way out.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import itertools
import json
import multiprocessing
import os
import resource
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc
from google.protobuf import struct_pb2
from prometheus_client.parser import text_string_to_metric_families

from bench.cpu import cpu_seconds, process_tree, stolen_seconds
from tests.reliability.workload import Target, new_token
from tests.stack import Stack, start_all, stop_all
from tkv.kv.v2 import kv_pb2, kv_pb2_grpc

CORES = os.cpu_count() or 1
# Watchers per HTTP/2 connection: kv_svc's workers share its port by connection
# (SO_REUSEPORT), so the watchers must come over several to reach every worker.
WATCHERS_PER_CHANNEL = 10
# Every watcher checks that it got every event (their count and the last key); these many
# check each event's key in order and time its delivery: a Python client cannot look at
# 100,000 events a second on the cores the servers use, and all watchers are alike.
TIMED_WATCHERS = 10
# The watchers are one user's; the default of 16 watches per user would refuse the rest.
STACK_ENV = {"TKV_KV_MAX_WATCHES_PER_USER": "1000"}
# The key the writer puts after every other put has its answer (sorts after them).
END = "~end"
# The name of each process that reads watches, with its number (--watcher-processes).
WATCHERS_PROCESS = "fanout-watchers"


def _percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _quantiles(ordered: list[float]) -> dict | None:
    """p50 and p99 of sorted seconds, in ms."""
    if not ordered:
        return None
    return {name: round(_percentile(ordered, q) * 1000, 2) for name, q in (("p50", 0.5), ("p99", 0.99))}


async def _write(
    address: str, token: str, prefix: str, total: int, rate: float, start: Callable[[], Awaitable[float]]
) -> dict:
    """The writer: once connected, awaits `start()` for its start time, then puts key i of
    `prefix` at `start + i / rate` (monotonic clock), open loop; after the last answer,
    the end key the watchers read up to."""
    md = [("authorization", f"Bearer {token}")]
    errors: collections.Counter[str] = collections.Counter()
    failed: list[str] = []
    details: set[str] = set()
    # How late each put started against its intended time (the generator's own lag, part
    # of the way in), and intended send -> answer of each put that succeeded.
    late: list[float] = []
    answered: list[float] = []
    async with grpc.aio.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
        stub = kv_pb2_grpc.KeyValueServiceStub(channel)
        await channel.channel_ready()
        started = await start()

        async def put(key: str, due: float) -> None:
            late.append(time.monotonic() - due)
            request = kv_pb2.PutPairRequest(namespace="me", key=key, value=struct_pb2.Value(number_value=1))
            try:
                await stub.PutPair(request, metadata=md, timeout=10)
            except grpc.aio.AioRpcError as error:
                errors[error.code().name] += 1
                failed.append(key)
                details.add(f"{error.code().name}: {error.details()}")
            else:
                answered.append(time.monotonic() - due)

        cpu_before = _own_cpu()
        puts = []
        for i in range(total):
            due = started + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            puts.append(asyncio.create_task(put(f"{prefix}{i:08d}", due)))
        await asyncio.gather(*puts)
        sent = time.monotonic()
        end = kv_pb2.PutPairRequest(namespace="me", key=f"{prefix}{END}", value=struct_pb2.Value(number_value=1))
        await stub.PutPair(end, metadata=md, timeout=30)
        return {
            "errors": dict(errors),
            "failed": failed,
            "details": sorted(details),
            "late": late,
            "answered": answered,
            "sent": sent,
            "cpu_seconds": _own_cpu() - cpu_before,
        }


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _receive(pipe, timeout: float):
    """The next object from a writer or watchers' process, failing after `timeout` seconds."""
    if not pipe.poll(timeout):
        raise TimeoutError(f"a fan-out client process sent nothing for {timeout:.0f} s")
    return pipe.recv()


def _writer_process(address: str, token: str, prefix: str, total: int, rate: float, pipe) -> None:
    """_write in a process of its own: a writer is another client than its watchers, and
    in one process its puts waited behind the watchers' reads in the same event loop
    (docs/watch.md). Says "ready" once connected, writes from the start time it is then
    sent (CLOCK_MONOTONIC is one clock for every process), and sends back what _write
    returns."""

    async def start() -> float:
        pipe.send("ready")
        return pipe.recv()  # the parent answers at once: blocking here is fine

    pipe.send(asyncio.run(_write(address, token, prefix, total, rate, start)))


async def _watch_all(
    address: str,
    token: str,
    prefix: str,
    indexes: list[int],
    opened: Callable[[], Awaitable[None]],
    written: Callable[[], Awaitable[None]],
) -> dict:
    """The watchers `indexes` of a run: opens their streams (calls `opened()` once every one
    has its first message), reads until each sees the end key or 30 s after `written()`
    returns, and gives, per watcher, its event count, last key, whether it saw the end
    key, and for the timed ones what each event was and when it came; with this process's
    CPU from `opened()` on."""
    md = [("authorization", f"Bearer {token}")]
    # One connection per channel: grpc shares one connection among the channels to an
    # address unless told not to, and then every watcher reached the same worker.
    options = [("grpc.use_local_subchannel_pool", 1)]
    channels = [
        grpc.aio.insecure_channel(address, options=options)
        for _ in range(max(1, -(-len(indexes) // WATCHERS_PER_CHANNEL)))
    ]
    stubs = [kv_pb2_grpc.KeyValueServiceStub(channel) for channel in channels]
    # Per timed watcher: key, version, when received, when the put's stored call ran.
    received: dict[int, list[tuple[str, int, float, float]]] = {index: [] for index in indexes}
    counts = dict.fromkeys(indexes, 0)
    last_keys = dict.fromkeys(indexes, "")
    finished = dict.fromkeys(indexes, False)
    # Put after every other put has its answer; a watcher reads until it sees it.
    end_key = f"{prefix}{END}"
    opened_streams = 0
    all_open = asyncio.Event()

    async def watch(index: int, stub) -> None:
        stream = stub.Watch(kv_pb2.WatchRequest(namespace="me", prefix=prefix), metadata=md)
        await stream.read()  # open: the progress message
        nonlocal opened_streams
        opened_streams += 1
        if opened_streams == len(indexes):
            all_open.set()
        mine, timed = received[index], index < TIMED_WATCHERS
        while True:
            message = await stream.read()
            if message == grpc.aio.EOF:
                return
            if not message.events:
                continue
            now = time.monotonic()
            events = list(message.events)
            done = events[-1].pair.key == end_key
            if done:
                events.pop()
            counts[index] += len(events)
            if events:
                last_keys[index] = events[-1].pair.key
            if timed:
                mine.extend(
                    (event.pair.key, event.pair.version, now, event.pair.update_time.ToNanoseconds() / 1e9)
                    for event in events
                )
            if done:
                finished[index] = True
                break
        stream.cancel()

    readers = [asyncio.create_task(watch(index, stubs[n % len(stubs)])) for n, index in enumerate(indexes)]
    try:
        await _first_of(all_open, readers, 30, "the fan-out's watches did not open")
        await opened()
        cpu_before = _own_cpu()
        await written()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*readers), 30)
        cpu_seconds = _own_cpu() - cpu_before
    finally:
        # Whether the run went well or not: no stream left reading, every error retrieved.
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        for channel in channels:
            await channel.close()
    return {
        "counts": counts,
        "last_keys": last_keys,
        "finished": finished,
        "received": {index: mine for index, mine in received.items() if mine},
        "cpu_seconds": cpu_seconds,
    }


async def _first_of(event: asyncio.Event, tasks: list[asyncio.Task], timeout: float, what: str) -> None:
    """Waits for `event`; raises the error of the first of `tasks` to fail before it instead
    (a refused watch fails the run at once, not after the timeout), or TimeoutError."""
    waiter = asyncio.create_task(event.wait())
    pending = {waiter, *tasks}
    try:
        async with asyncio.timeout(timeout):
            while not event.is_set():
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if task is not waiter and task.exception() is not None:
                        raise task.exception()
    except TimeoutError:
        raise TimeoutError(f"{what} in {timeout:.0f} s") from None
    finally:
        waiter.cancel()


def _watchers_process(address: str, token: str, prefix: str, indexes: list[int], pipe) -> None:
    """_watch_all in a process of its own: says "open" once its streams are, reads until
    it is sent "written", and sends back what _watch_all returns."""

    async def opened() -> None:
        pipe.send("open")

    async def written() -> None:
        await asyncio.get_running_loop().run_in_executor(None, _receive, pipe, 600)

    pipe.send(asyncio.run(_watch_all(address, token, prefix, indexes, opened, written)))


async def measure(
    address: str,
    token: str,
    watchers: int,
    rate: float,
    seconds: float,
    server_pids: dict,
    writer_process: bool = True,
    watcher_processes: int = 0,
) -> dict:
    """One run; `watcher_processes` 0 reads the watches in this process, N in N processes of
    their own (watcher i in process i mod N)."""
    md = [("authorization", f"Bearer {token}")]
    prefix = f"fanout-{uuid.uuid4().hex[:8]}/"
    total = int(rate * seconds)
    end_key = f"{prefix}{END}"
    loop = asyncio.get_running_loop()
    context = multiprocessing.get_context("spawn")  # not fork: this process uses gRPC
    writer_done = asyncio.Event()
    watching: list[asyncio.Task] = []
    pipes, processes = [], []
    if watcher_processes:
        for n in range(watcher_processes):
            ours, theirs = context.Pipe()
            indexes = list(range(n, watchers, watcher_processes))
            processes.append(
                context.Process(
                    target=_watchers_process,
                    args=(address, token, prefix, indexes, theirs),
                    name=f"{WATCHERS_PROCESS}-{n}",
                    daemon=True,
                )
            )
            processes[-1].start()
            theirs.close()  # only the child holds its end: if it dies, recv() raises
            pipes.append(ours)
        try:
            for ours in pipes:
                if await loop.run_in_executor(None, _receive, ours, 60) != "open":
                    raise RuntimeError("a fan-out watcher process did not open its watches")
        except BaseException:
            for process in processes:  # the others would hold their watches open
                process.terminate()
                process.join(10)
            raise
    elif watchers:
        streams_open = asyncio.Event()

        async def opened() -> None:
            streams_open.set()

        async def written() -> None:
            await writer_done.wait()

        watching.append(asyncio.create_task(_watch_all(address, token, prefix, list(range(watchers)), opened, written)))
        await _first_of(streams_open, watching, 60, "the fan-out's watches did not open")

    # The writer: in a process of its own unless told otherwise (then in this one's loop,
    # as before, for comparison). Measuring starts when it is connected.
    measured: dict = {}

    def begin() -> float:
        measured["cpu"] = {name: cpu_seconds(pids) for name, pids in server_pids.items()}
        measured["stolen"] = stolen_seconds()
        measured["started"] = time.monotonic()
        return measured["started"]

    if writer_process:
        writer, theirs = context.Pipe()
        process = context.Process(
            target=_writer_process, args=(address, token, prefix, total, rate, theirs), daemon=True
        )
        process.start()
        # Only the child holds its end now: if it dies, recv() raises instead of waiting.
        theirs.close()
        if await loop.run_in_executor(None, _receive, writer, 60) != "ready":
            raise RuntimeError("the fan-out writer did not start")
        writer.send(begin())
        written = await loop.run_in_executor(None, _receive, writer, seconds + 60)
        process.join()
    else:

        async def start() -> float:
            return begin()

        written = await _write(address, token, prefix, total, rate, start)
    started, cpu_before, stolen_before = measured["started"], measured["cpu"], measured["stolen"]
    intended = {f"{prefix}{i:08d}": started + i / rate for i in range(total)}
    sent_seconds = written["sent"] - started
    writer_done.set()
    for ours in pipes:
        ours.send("written")
    parts = [await task for task in watching]
    parts += [await loop.run_in_executor(None, _receive, ours, 60) for ours in pipes]
    for process in processes:  # each ends once it has sent its part
        await loop.run_in_executor(None, process.join, 10)
    window = time.monotonic() - started
    cpu = {name: cpu_seconds(pids) - cpu_before[name] for name, pids in server_pids.items()}
    stolen = stolen_seconds() - stolen_before
    # With the watchers in this process, their CPU already counts an in-process writer's.
    watchers_cpu = sum(part["cpu_seconds"] for part in parts)
    writer_cpu = written["cpu_seconds"] if writer_process else 0.0
    counts, last_keys, finished, received = {}, {}, {}, {}
    for part in parts:
        counts.update(part["counts"])
        last_keys.update(part["last_keys"])
        finished.update(part["finished"])
        received.update(part["received"])
    # What the store holds is what every watcher must have seen: a put that failed may
    # still have been stored (an answer lost after the commit), or not.
    async with grpc.aio.insecure_channel(address) as channel:
        stored = await stored_keys(kv_pb2_grpc.KeyValueServiceStub(channel), md, prefix)
    stored.discard(end_key)
    failed = set(written["failed"])

    expected_keys = sorted(stored)
    # Puts overlap (open loop), so they commit in any order: a watcher must see each key
    # once, in the order of the revisions, which is what the last event shows as well.
    last_key = max(received[0], key=lambda item: item[1])[0] if 0 in received else None

    def in_order(index: int) -> bool:
        if index >= TIMED_WATCHERS:
            return True
        mine = received.get(index, [])
        versions = [version for _, version, _, _ in mine]
        keys = sorted(key for key, _, _, _ in mine)
        return keys == expected_keys and all(a < b for a, b in itertools.pairwise(versions))

    complete = sum(
        1
        for index in range(watchers)
        if finished[index] and counts[index] == len(stored) and last_keys[index] == last_key and in_order(index)
    )
    latencies = sorted(at - intended[key] for mine in received.values() for key, _, at, _ in mine)
    # The two halves of each delivery: the put's way in (intended send -> its stored call
    # ran, Tarantool's fiber.time(), wall clock) and the watch's way out (-> received).
    wall = time.time() - time.monotonic()
    way_in = sorted(stored - (intended[key] + wall) for mine in received.values() for key, _, _, stored in mine)
    way_out = sorted(at + wall - stored for mine in received.values() for _, _, at, stored in mine)
    delivered = sum(counts.values())
    return {
        "watchers": watchers,
        "rate_per_s": rate,
        "puts": total,
        "writer": "a process of its own" if writer_process else "the watchers' process",
        "put_errors": sum(written["errors"].values()),
        "put_error_codes": written["errors"],
        "put_error_details": written["details"][:5],
        "puts_stored": len(stored),
        "failed_puts_stored": len(failed & stored),
        "put_seconds": round(sent_seconds, 2),
        "delivered": delivered,
        # Every stored put to every watcher.
        "expected_deliveries": len(stored) * watchers,
        "watchers_complete_in_order": complete,
        "timed_watchers": min(watchers, TIMED_WATCHERS),
        "latency_p50_ms": round(_percentile(latencies, 0.5) * 1000, 2) if latencies else None,
        "latency_p99_ms": round(_percentile(latencies, 0.99) * 1000, 2) if latencies else None,
        "latency_max_ms": round(latencies[-1] * 1000, 2) if latencies else None,
        "put_to_stored_ms": _quantiles(way_in),
        "put_start_late_ms": _quantiles(sorted(written["late"])),
        "put_answered_ms": _quantiles(sorted(written["answered"])),
        "stored_to_received_ms": _quantiles(way_out),
        "server_cpu_seconds": {name: round(seconds, 3) for name, seconds in cpu.items()},
        "window_seconds": round(window, 2),
        "server_cpu_cores": {name: round(seconds / window, 2) for name, seconds in cpu.items()},
        "cpu_us_per_delivered_event": {
            name: round(seconds / delivered * 1e6, 2) if delivered else None for name, seconds in cpu.items()
        },
        "cpu_us_per_put": {name: round(seconds / total * 1e6, 1) for name, seconds in cpu.items()},
        "client_cpu_cores": round((watchers_cpu + writer_cpu) / window, 2),
        "writer_cpu_cores": round(writer_cpu / window, 2) if writer_process else None,
        "stolen_cores": round(stolen / window, 2),
    }


async def stored_keys(stub, md, prefix: str) -> set[str]:
    """The keys under `prefix` in the caller's namespace, every page of them."""
    keys: set[str] = set()
    token = ""
    while True:
        request = kv_pb2.ListPairsRequest(
            namespace="me", prefix=prefix, page_size=1000, page_token=token, keys_only=True
        )
        page = await stub.ListPairs(request, metadata=md, timeout=30)
        keys.update(pair.key for pair in page.pairs)
        token = page.next_page_token
        if not token:
            return keys


def _rss(pids: list[int]) -> int:
    return sum(int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") for pid in pids)


async def idle_cost(stack: Stack, token: str, watchers: int, seconds: float = 30) -> dict:
    kv = process_tree(stack.processes["kv_svc"].popen.pid)
    tarantool = process_tree(stack.processes["tarantool"].popen.pid)
    md = [("authorization", f"Bearer {token}")]
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{stack.kv_port}") for _ in range(10)]
    stubs = [kv_pb2_grpc.KeyValueServiceStub(channel) for channel in channels]
    before = _rss(kv)
    streams = []
    for i in range(watchers):
        stream = stubs[i % len(stubs)].Watch(kv_pb2.WatchRequest(namespace="me", prefix=f"idle{i}/"), metadata=md)
        await stream.read()
        streams.append(stream)
    await asyncio.sleep(2)
    after = _rss(kv)

    async def drain(stream) -> None:
        while (await stream.read()) != grpc.aio.EOF:
            pass

    readers = [asyncio.create_task(drain(stream)) for stream in streams]
    kv_cpu, tarantool_cpu, started = cpu_seconds(kv), cpu_seconds(tarantool), time.monotonic()
    await asyncio.sleep(seconds)
    window = time.monotonic() - started
    result = {
        "watchers": watchers,
        "rss_bytes_per_watcher": round((after - before) / watchers),
        "idle_kv_cpu_cores": round((cpu_seconds(kv) - kv_cpu) / window, 4),
        "idle_tarantool_cpu_cores": round((cpu_seconds(tarantool) - tarantool_cpu) / window, 4),
    }
    for reader in readers:
        reader.cancel()
    for channel in channels:
        await channel.close()
    return result


# kv_svc's workers publish their metrics every 0.5 s: a scrape this long after a run holds all of it.
METRICS_SETTLE_SECONDS = 1.2


def lag_buckets(metrics_port: int) -> dict[float, float]:
    """kv_svc's tkv_watch_lag_seconds now: cumulative count per upper bound (le)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        float(sample.labels["le"]): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "tkv_watch_lag_seconds_bucket"
    }


def histogram_quantile(q: float, buckets: dict[float, float]) -> float | None:
    """As Prometheus' histogram_quantile estimates it from cumulative buckets: linear within
    the bucket the rank falls in; the highest finite bound past the last one."""
    bounds = sorted(buckets)
    if not bounds or not buckets[bounds[-1]]:
        return None
    rank = q * buckets[bounds[-1]]
    lower, below = 0.0, 0.0
    for bound in bounds:
        if buckets[bound] >= rank:
            if bound == float("inf"):
                return lower
            return lower + (bound - lower) * (rank - below) / (buckets[bound] - below)
        lower, below = bound, buckets[bound]
    return lower


def server_lag(before: dict[float, float], after: dict[float, float]) -> dict | None:
    """kv_svc's own part of the way out over a run, from its histogram's growth: messages
    sent on live watches, and p50/p99 in ms of each one's oldest event's write -> sent."""
    grown = {bound: count - before.get(bound, 0.0) for bound, count in after.items()}
    if not grown or not grown.get(float("inf")):
        return None
    return {
        "messages": int(grown[float("inf")]),
        **{name: round(histogram_quantile(q, grown) * 1000, 1) for name, q in (("p50", 0.5), ("p99", 0.99))},
    }


def run_on(
    stack: Stack,
    token: str,
    watchers: int,
    rate: float,
    seconds: float,
    writer_process: bool = True,
    watcher_processes: int = 0,
) -> dict:
    """measure() on `stack`, with kv_svc's own part of the way out from its metrics."""
    pids = {name: process_tree(process.popen.pid) for name, process in stack.processes.items()}
    address = f"127.0.0.1:{stack.kv_port}"
    if not watchers:  # no watch, no lag to read
        return asyncio.run(measure(address, token, 0, rate, seconds, pids, writer_process))
    time.sleep(METRICS_SETTLE_SECONDS)  # what an earlier run sent is published
    before = lag_buckets(stack.kv_metrics_port)
    result = asyncio.run(measure(address, token, watchers, rate, seconds, pids, writer_process, watcher_processes))
    time.sleep(METRICS_SETTLE_SECONDS)
    result["server_lag_ms"] = server_lag(before, lag_buckets(stack.kv_metrics_port))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--watchers", type=int, default=100)
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument(
        "--watcher-processes", type=int, default=0, help="read the watches in this many processes (0: this one)"
    )
    parser.add_argument("--idle", type=int, default=0, help="measure this many idle watches instead")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tkv-fanout-") as directory:
        workers = "1" if args.idle else str(CORES)
        limit = {"TKV_KV_MAX_WATCHES_PER_USER": str(max(1000, args.idle))}
        stack = Stack(Path(directory), extra_env={"TKV_WORKERS": workers, **STACK_ENV, **limit})
        stack.processes = start_all(stack)
        try:
            token = asyncio.run(new_token(Target.of(stack)))
            if args.idle:
                print(json.dumps(asyncio.run(idle_cost(stack, token, args.idle))))
            else:
                result = run_on(stack, token, args.watchers, args.rate, args.seconds, True, args.watcher_processes)
                print(json.dumps(result))
        finally:
            stop_all(stack.processes)


if __name__ == "__main__":
    main()
