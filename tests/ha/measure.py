"""Repeats the master crash for the figures in docs/high-availability.md: each run on a
fresh HA stack, 8 writers through the gateway, the master's Tarantool SIGKILLed.

    python -m tests.ha.measure [--runs 5] [--mode sync|async|both]      (make ha-measure)

Prints one JSON line per run and, per mode, the median time writes failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
from pathlib import Path

from tests.ha.cluster import HaCluster
from tests.ha.scenarios import master_crash


def run_once(sync: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix="tkv-ha-measure-") as directory:
        cluster = HaCluster.create(Path(directory), sync=sync).start()
        try:
            outcome = asyncio.run(master_crash(cluster, lossless=sync))
        finally:
            cluster.stop()
    return {
        "mode": "sync" if sync else "async",
        **outcome.figures,
        "violations": [f"{v.rule}: {v.detail}" for v in outcome.violations[:5]],
        "violation_count": len(outcome.violations),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--mode", choices=("sync", "async", "both"), default="both")
    args = parser.parse_args(argv)
    modes = {"sync": [True], "async": [False], "both": [True, False]}[args.mode]
    failed = False
    for sync in modes:
        runs = []
        for _ in range(args.runs):
            figures = run_once(sync)
            print(json.dumps(figures, sort_keys=True), flush=True)
            runs.append(figures)
            failed |= figures["violation_count"] > 0
        gaps = [r["writes_failed_for_s"] for r in runs]
        print(
            json.dumps(
                {
                    "mode": "sync" if sync else "async",
                    "runs": len(runs),
                    "writes_failed_for_s": gaps,
                    "median_s": round(statistics.median(gaps), 3),
                    "lost_acknowledged": sum(r.get("async_acknowledged_writes_lost", 0) for r in runs),
                }
            ),
            flush=True,
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
