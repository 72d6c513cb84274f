"""The HA fault scenarios, each a function over a running HaCluster that returns its
measured figures and the history it recorded. The tests (tests/ha/test_*.py) assert on
them; `python -m tests.ha.measure` repeats them for the figures in
docs/high-availability.md.
"""

from __future__ import annotations

import asyncio
import signal
import time
from dataclasses import dataclass, field

from .cluster import HaCluster
from .history import History, Violation, check, old_master_after_new
from .workload import Console, Gateway, Writers, first_ack_after, probe_rounds, write_gap


@dataclass
class Outcome:
    figures: dict
    history: History
    violations: list[Violation] = field(default_factory=list)


class Load:
    """Eight writers through the gateway (4 v1, 4 v2) and the write probes, running while a
    scenario does its harm."""

    def __init__(self, cluster: HaCluster):
        self.cluster = cluster
        self.history = History()
        self.gateway = Gateway("127.0.0.1", cluster.stack.gateway_port)
        self.writers = Writers(self.gateway, self.history)
        self.stop = asyncio.Event()
        self.consoles = {n.name: Console(cluster.topology.console(n.name)) for n in cluster.topology.nodes}
        self._tasks: list[asyncio.Task] = []

    async def __aenter__(self) -> Load:
        _, self.writers.token = await self.gateway.account()
        self.writers.stop = self.stop
        self._tasks = [
            asyncio.create_task(self.writers.run()),
            asyncio.create_task(probe_rounds(self.consoles, self.history, self.stop)),
        ]
        return self

    async def __aexit__(self, *exc) -> None:
        self.stop.set()
        await asyncio.gather(*self._tasks)
        for console in self.consoles.values():
            console.close()

    async def finish(self, lossless: bool) -> list[Violation]:
        self.stop.set()
        await asyncio.gather(*self._tasks)
        final = await self.writers.final_values()
        return check(self.history, final, lossless=lossless)


async def wait_for(check, what: str, timeout: float) -> float:
    started = time.monotonic()
    while not await asyncio.to_thread(check):
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{what} not true after {timeout}s")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def master_crash(cluster: HaCluster, *, lossless: bool, before: float = 2.0, after: float = 4.0) -> Outcome:
    """SIGKILL the master's Tarantool under load; its agent releases leadership, a replica
    takes it; the old master is started again (as its supervisor would) and rejoins."""
    old = cluster.wait_for_leader()
    async with Load(cluster) as load:
        await asyncio.sleep(before)
        killed_at = time.monotonic()
        cluster.processes[f"tarantool-{old}"].stop(signal.SIGKILL)
        new_leader_s = await wait_for(lambda: cluster.leader() not in (None, old), "a new leader", timeout=30)
        new = cluster.leader()
        await asyncio.sleep(1.0)
        await asyncio.to_thread(cluster.processes[f"tarantool-{old}"].start)
        await asyncio.sleep(after)
        violations = await load.finish(lossless)
        gap = write_gap(load.history, killed_at)
    rejoined_s = await wait_for(lambda: _follows(cluster, old, new), "the old master following the new", timeout=60)
    violations += old_master_after_new(load.history, old, new)
    figures = {
        "old": old,
        "new": new,
        "new_leader_after_s": round(new_leader_s, 3),
        "writes_failed_for_s": round(gap, 3),
        "first_ack_after_kill_s": _round(first_ack_after(load.history, killed_at)),
        "old_master_rejoined_s": round(rejoined_s, 3),
        **load.history.summary(),
    }
    return Outcome(figures, load.history, violations)


def _follows(cluster: HaCluster, name: str, leader: str) -> bool:
    state = cluster.state(name)
    node = state.get("node") if state else None
    return bool(node and node["ro"] and node["follows"] == [cluster.topology.node(leader).tarantool])


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
