"""`make soak`: the long reliability runs, on demand (not part of `make test`).

    python -m tests.reliability.soak [--clients 50] [--load-seconds 60] [--soak-minutes 10]

Starts its own stack on free loopback ports with a fresh data dir (default argon2 cost),
then:
1. load: `--clients` mixed clients for `--load-seconds`; p50/p99 per operation, errors,
   Tarantool connections and RSS of every process before/after;
2. soak: the same load for `--soak-minutes`, RSS sampled every 30 s. Bounded caches fill in
   the first minutes (the verified-token cache: up to TKV_JWT_CACHE_SIZE tokens, and the soak
   logs in thousands of times), so the check is on the second half only: the least-squares
   slope of each service's and Envoy's RSS there, as a share of its mean per 10 minutes, must
   stay under 5 % (a leak keeps climbing; a filled cache does not). The growth from the first
   sample after a one-minute warm-up is reported too. `--token-cache-size 0` runs with the
   cache off, to show what the cache accounts for; by default the soak sizes it down to
   2,000 tokens, full within the warm-up. Tarantool is reported, not judged: it
   grows with the data the load keeps adding, so its RSS is shown next to the bytes of stored
   tuples (box.slab.info().items_used);
3. durability: writers through a Tarantool SIGKILL, as in tests/reliability.
Prints one JSON report and exits non-zero when a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import tempfile
from pathlib import Path

from tests.reliability.workload import Target, crash_run, rss_kib, run_mixed_load, tarantool_connections
from tests.stack import Stack, start_all, stop_all

SAMPLE_SECONDS = 30
# The verified-token cache of the soak's services, unless --token-cache-size says otherwise:
# sized down from the default 10,000 so that it is full within the warm-up (the soak logs in
# ~1,400 times a minute) and its filling does not pass for a leak in the second half.
SOAK_TOKEN_CACHE_SIZE = 2000
# The soak's bound on the second half's slope, in percent of the mean per 10 minutes.
MAX_SLOPE_PERCENT = 5.0


def start_stack(directory: Path, token_cache_size: int) -> Stack:
    env = {
        "TKV_ARGON2_MEMORY_KIB": "19456",
        "TKV_ARGON2_TIME_COST": "2",
        "TKV_JWT_CACHE_SIZE": str(token_cache_size),
    }
    stack = Stack(directory, extra_env=env)
    stack.processes = start_all(stack)
    return stack


def rss(processes) -> dict[str, int]:
    return {name: rss_kib(process.popen.pid) for name, process in processes.items()}


async def load_phase(stack, processes, target, clients, seconds) -> dict:
    before, rss_before = tarantool_connections(stack), rss(processes)
    latencies = await run_mixed_load(target, clients, seconds)
    return {
        "clients": clients,
        "seconds": seconds,
        "operations": latencies.report(),
        "errors": {op: errors[:3] for op, errors in latencies.errors.items() if errors},
        "tarantool_connections": [before, tarantool_connections(stack)],
        "rss_kib": {name: [rss_before[name], value] for name, value in rss(processes).items()},
    }


def slope_percent_per_10_minutes(values: list[int]) -> float:
    """Least-squares slope of samples SAMPLE_SECONDS apart, as a share of their mean per 10 min."""
    minutes = [i * SAMPLE_SECONDS / 60 for i in range(len(values))]
    mean_x, mean_y = sum(minutes) / len(minutes), sum(values) / len(values)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(minutes, values, strict=True)) / sum(
        (x - mean_x) ** 2 for x in minutes
    )
    return round(100 * slope * 10 / mean_y, 2)


def stored_bytes(stack) -> int:
    return int(stack.console("box.slab.info().items_used"))


async def soak_phase(stack, processes, target, clients, minutes) -> dict:
    samples: list[dict[str, int]] = []
    data_before = stored_bytes(stack)

    async def sample():
        while True:
            await asyncio.sleep(SAMPLE_SECONDS)
            samples.append(rss(processes))

    sampler = asyncio.create_task(sample())
    latencies = await run_mixed_load(target, clients, minutes * 60)
    sampler.cancel()
    warm = samples[2:] if len(samples) > 3 else samples  # the first minute is warm-up
    growth = {name: round(100 * (warm[-1][name] - warm[0][name]) / warm[0][name], 1) for name in warm[0]}
    second_half = samples[len(samples) // 2 :]
    slopes = {name: slope_percent_per_10_minutes([s[name] for s in second_half]) for name in second_half[0]}
    return {
        "minutes": minutes,
        "rss_samples_kib": samples,
        "rss_growth_percent": growth,
        "second_half_slope_percent_per_10_min": slopes,
        "tarantool_stored_bytes": [data_before, stored_bytes(stack)],
        "operations": latencies.report(),
        "errors": {op: len(errors) for op, errors in latencies.errors.items() if errors},
    }


async def durability_phase(stack) -> dict:
    _, figures = await crash_run(stack, ["tarantool"], writers_per_transport=4, before=5, down=2, after=5)
    return figures


async def main(args) -> int:
    with tempfile.TemporaryDirectory(prefix="tkv-soak-") as directory:
        stack = start_stack(Path(directory), args.token_cache_size)
        processes = stack.processes
        target = Target.of(stack)
        try:
            report = {"load": await load_phase(stack, processes, target, args.clients, args.load_seconds)}
            if args.soak_minutes > 0:
                report["soak"] = await soak_phase(stack, processes, target, args.clients, args.soak_minutes)
            report["durability"] = await durability_phase(stack)
        finally:
            stop_all(processes, signal.SIGKILL)
    failures = []
    if report["load"]["errors"]:
        failures.append("errors under load")
    if len(set(report["load"]["tarantool_connections"])) != 1:
        failures.append("Tarantool connections grew under load")
    if "soak" in report and any(
        slope >= MAX_SLOPE_PERCENT
        for name, slope in report["soak"]["second_half_slope_percent_per_10_min"].items()
        if name != "tarantool"
    ):
        failures.append(
            f"a service's or Envoy's RSS still climbed {MAX_SLOPE_PERCENT} % per 10 min or more late in the soak"
        )
    if "soak" in report and report["soak"]["errors"]:
        failures.append("errors during the soak")
    if report["durability"]["lost"] or report["durability"]["corrupted"]:
        failures.append("acknowledged writes lost")
    report["failures"] = failures
    print(json.dumps(report, indent=2))
    return 1 if failures else 0


if __name__ == "__main__":
    # SIGTERM unwinds like Ctrl-C, so the `finally` above stops every process it started.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--load-seconds", type=float, default=60)
    parser.add_argument("--soak-minutes", type=float, default=10)
    parser.add_argument(
        "--token-cache-size",
        type=int,
        default=SOAK_TOKEN_CACHE_SIZE,
        help=f"TKV_JWT_CACHE_SIZE for the services (0: no cache; default {SOAK_TOKEN_CACHE_SIZE})",
    )
    sys.exit(asyncio.run(main(parser.parse_args())))
