"""CPU time of processes, read from /proc, for the benchmark's CPU columns."""

from __future__ import annotations

import os
import resource
import subprocess
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [pid, *(child for line in out.split() for child in process_tree(int(line)))]


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except OSError:
            pass
    return total / TICKS


def cpu_in(samples: list[tuple[float, float]], start: float, end: float) -> float:
    """CPU seconds between two moments, from (time, cumulative CPU) samples."""

    def at(moment: float) -> float:
        before = [s for s in samples if s[0] <= moment] or samples[:1]
        after = [s for s in samples if s[0] >= moment] or samples[-1:]
        (t0, c0), (t1, c1) = before[-1], after[0]
        return c0 if t1 == t0 else c0 + (c1 - c0) * (moment - t0) / (t1 - t0)

    return at(end) - at(start)


def stolen_seconds() -> float:
    """CPU time the hypervisor gave to others while this VM's CPUs wanted it (steal, over
    all cores, since boot): when it grows during a run, the run measured a slower machine,
    however idle the processes look."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return int(fields[8]) / TICKS


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def others_cpu(root: int | None = None) -> dict[tuple[int, int], int]:
    """CPU ticks (since they started) of every process that is not `root` (default: this
    process) or its descendant, by (pid, start time): what else runs on the machine. See
    others_cores."""
    root = os.getpid() if root is None else root
    parents, ticks = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        ticks[(pid, int(fields[19]))] = int(fields[11]) + int(fields[12])  # utime + stime; key: starttime
    ours = {root}
    while grown := {pid for pid, parent in parents.items() if parent in ours} - ours:
        ours |= grown  # descendants of root, whatever order /proc lists them in
    return {key: value for key, value in ticks.items() if key[0] not in ours}


def others_cores(before: dict[tuple[int, int], int], after: dict[tuple[int, int], int], seconds: float) -> float:
    """Cores the other processes used between two others_cpu() samples `seconds` apart:
    the growth of each one alive at the second sample (all of it for one started in
    between). A process that ended in between is missed, so this is a lower bound."""
    return sum(value - before.get(key, 0) for key, value in after.items()) / TICKS / seconds
