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

from tests.stack import NeverHappened

from .cluster import HaCluster
from .history import History, Violation, check, old_master_after_new, reads_going_back
from .workload import Console, Gateway, Writers, first_ack_after, probe_rounds, write_gap


@dataclass
class Outcome:
    figures: dict
    history: History
    violations: list[Violation] = field(default_factory=list)
    # Asynchronous mode: what the rules it cannot promise found (lost writes), reported.
    unchecked: list[Violation] = field(default_factory=list)


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
        self.unchecked: list[Violation] = []

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

    async def until_acked(self, count: int, since: float | None = None, timeout: float = 30.0) -> bool:
        """Waits until `count` writes sent from `since` on (time.monotonic(); default now)
        were acknowledged, or `timeout` passes; whether they were. How long a scenario lets
        the load run, where a fixed sleep would guess at how much it did (a slow machine
        wrote little in 1.5 s). Never raises: the checker judges what the writes show."""
        since = time.monotonic() if since is None else since
        deadline = time.monotonic() + timeout
        while sum(op.start >= since for op in self.history.acked("write")) < count:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    async def finish(self, lossless: bool) -> list[Violation]:
        self.stop.set()
        await asyncio.gather(*self._tasks)
        final = await self.writers.final_values()
        if not lossless:
            self.unchecked = [v for v in check(self.history, final) if v.rule != "one writer at a time"]
        return check(self.history, final, lossless=lossless)


async def wait_for(check, what: str, timeout: float) -> float:
    started = time.monotonic()
    while not await asyncio.to_thread(check):
        if time.monotonic() - started > timeout:
            raise NeverHappened(f"{what} not true after {timeout}s")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def master_crash(cluster: HaCluster, *, lossless: bool, before: int = 200, after: int = 300) -> Outcome:
    """SIGKILL the master's Tarantool under load; its agent releases leadership, a replica
    takes it; the old master is started again by its supervisor (after 1 s) and rejoins.
    `before`, `after`: the writes acknowledged before the kill and after the new leader."""
    old = cluster.wait_for_leader()
    cluster.supervise()
    async with Load(cluster) as load:
        await load.until_acked(before)
        killed_at = time.monotonic()
        cluster.processes[f"tarantool-{old}"].popen.send_signal(signal.SIGKILL)
        new_leader_s = await wait_for(lambda: cluster.leader() not in (None, old), "a new leader", timeout=30)
        new = cluster.leader()
        await load.until_acked(after)
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
        "services_moved_after_leader_s": services_switch_delay(cluster, new),
        "old_master_rejoined_s": round(rejoined_s, 3),
        **_losses(load),
        **load.history.summary(),
    }
    return Outcome(figures, load.history, violations, load.unchecked)


def _losses(load: Load) -> dict:
    """What is reported rather than asserted: asynchronous mode's losses, and reads that
    saw a write later rolled back (Tarantool 2.6 reads uncommitted synchronous writes)."""
    lost = [v for v in load.unchecked if v.rule == "acknowledged writes survive"]
    figures = {"reads_that_went_back": len(reads_going_back(load.history))}
    if load.unchecked:
        figures.update(async_acknowledged_writes_lost=len(lost), async_other_anomalies=len(load.unchecked) - len(lost))
    return figures


async def _first_moment(check, since: float, timeout: float) -> float | None:
    """Seconds from `since` until `check()` first held; None if not within `timeout`."""
    while time.monotonic() - since < timeout:
        if await asyncio.to_thread(check):
            return time.monotonic() - since
        await asyncio.sleep(0.05)
    return None


def _holds(cluster: HaCluster, name: str, leader: str) -> bool:
    """Whether node `name` has every row the leader has (and no other)."""
    mine, theirs = cluster.state(name), cluster.state(leader)
    if not (mine and theirs and "node" in mine and "node" in theirs):
        return False
    return mine["node"]["vclock"] == theirs["node"]["vclock"]


def _log_time(path, message: str, **fields) -> float | None:
    """The wall-clock time of the last JSON log line with `message` and `fields`."""
    import datetime
    import json

    found = None
    if not path.exists():
        return None
    for line in path.read_text(errors="replace").splitlines():
        if not line.startswith("{") or f'"{message}"' not in line:
            continue
        record = json.loads(line)
        if record.get("msg") == message and all(record.get(k) == v for k, v in fields.items()):
            found = datetime.datetime.fromisoformat(record["ts"].replace("Z", "+00:00")).timestamp()
    return found


def services_switch_delay(cluster: HaCluster, leader: str) -> float | None:
    """Seconds from the new leader's agent logging that its node takes writes to kv_svc
    logging that it moved there (both write their times to the millisecond)."""
    data = cluster.stack.data_dir
    took = _log_time(data / f"agent-{leader}.log", "leading: the node takes writes", node=leader)
    moved = _log_time(
        data / "kv_svc.log", "tarantool writable node changed", to=cluster.topology.node(leader).tarantool
    )
    return None if took is None or moved is None else round(moved - took, 3)


def _follows(cluster: HaCluster, name: str, leader: str) -> bool:
    state = cluster.state(name)
    node = state.get("node") if state else None
    return bool(node and node["ro"] and node["follows"] == [cluster.topology.node(leader).tarantool])


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _ro(cluster: HaCluster, name: str) -> bool:
    try:
        return cluster.console(name, "box.info.ro", timeout=1) == "true"
    except OSError:
        return False


def node_ports(cluster: HaCluster) -> dict[str, list[int]]:
    """Every port a node's processes listen on: Tarantool, agent, etcd client and peer."""
    return {
        n.name: [n.tarantool_port, n.agent_port, n.etcd_client_port, n.etcd_peer_port] for n in cluster.topology.nodes
    }


async def master_partition(cluster: HaCluster, *, lossless: bool, cut_for: float = 6.0) -> Outcome:
    """Cut the master off from the other nodes and from etcd's majority (nft, by cgroup:
    tests/ha/partition.py) while the services still reach it; heal; it must come back as
    a replica holding the new master's history."""
    from .partition import Partition

    old = cluster.wait_for_leader()
    cluster.supervise()  # a diverged old master rebuilds itself: it exits, and is restarted
    partition = Partition(cluster.cgroups, old, node_ports(cluster))
    try:
        async with Load(cluster) as load:
            await load.until_acked(100)
            cut_at = time.monotonic()
            partition.cut()
            # When the old master turned read-only, watched beside the rest: a master that
            # never fences must still let the scenario (and the checker) run to the end.
            fenced = asyncio.create_task(_first_moment(lambda: _ro(cluster, old), cut_at, timeout=20))
            await wait_for(lambda: cluster.leader() not in (None, old), "a leader on the majority side", timeout=30)
            new_leader_s = time.monotonic() - cut_at
            new = cluster.leader()
            await asyncio.sleep(max(cut_for - (time.monotonic() - cut_at), 1.0))
            fenced_s = await fenced
            violations = await load.finish(lossless)
            gap = write_gap(load.history, cut_at)
        # Healed without writes under way: Tarantool 2.6.0 cannot join a rebuilt node while
        # the leader confirms synchronous writes (docs/high-availability.md, "Known limits").
        partition.heal()
        rejoined_s = await wait_for(lambda: _follows(cluster, old, new), "the old master following", timeout=90)
        holds_history = await wait_for(lambda: _holds(cluster, old, new), "the old master's history", timeout=30)
    finally:
        partition.heal()
    violations += old_master_after_new(load.history, old, new)
    figures = {
        "old": old,
        "new": new,
        "old_master_read_only_after_s": _round(fenced_s),
        "new_leader_after_s": round(new_leader_s, 3),
        "writes_failed_for_s": round(gap, 3),
        "old_master_rejoined_after_heal_s": round(rejoined_s, 3),
        "old_master_caught_up_s": round(holds_history, 3),
        "old_master_rebuilt": any(name == f"tarantool-{old}" for name, _ in cluster.restarts),
        **_losses(load),
        **load.history.summary(),
    }
    return Outcome(figures, load.history, violations, load.unchecked)


async def etcd_member_lost(cluster: HaCluster, raft_leader: bool) -> Outcome:
    """One etcd member SIGKILLed under load: nothing may change (same leader, writes on).
    `raft_leader`: etcd's own leader (an etcd election follows), else the member the
    leader's agent talks to first when it is not etcd's leader."""
    from tkv_common.etcd import Etcd

    leader = cluster.wait_for_leader()
    etcd = Etcd(tuple(cluster.topology.etcd_endpoints.split(",")))
    try:
        raft = await etcd.leader_endpoint()
    finally:
        await etcd.close()
    by_endpoint = {n.etcd_client: n.name for n in cluster.topology.nodes}
    if raft_leader:
        victim = f"etcd-{by_endpoint[raft]}"
    else:
        victim = next(f"etcd-{n}" for n in (leader, *by_endpoint.values()) if by_endpoint.get(raft) != n)
    async with Load(cluster) as load:
        await load.until_acked(100)
        killed_at = time.monotonic()
        cluster.processes[victim].stop(signal.SIGKILL)
        await asyncio.sleep(5.0)
        same_leader = cluster.leader()
        violations = await load.finish(lossless=True)
    figures = {
        "killed": victim,
        "etcd_raft_leader": by_endpoint.get(raft),
        "leader_before": leader,
        "leader_after": same_leader,
        "writes_failed_for_s": round(write_gap(load.history, killed_at), 3),
        **load.history.summary(),
    }
    return Outcome(figures, load.history, violations)


async def etcd_quorum_lost(cluster: HaCluster, down_for: float = 9.0) -> Outcome:
    """Two of three etcd members down: the leader cannot renew, fences itself; writes get
    UNAVAILABLE while reads go on (from the last leader, read-only now); etcd back, and
    writes come back by themselves."""
    from .workload import read_back

    leader = cluster.wait_for_leader()
    victims = [f"etcd-{n.name}" for n in cluster.topology.nodes if n.name != leader]
    async with Load(cluster) as load:
        await load.until_acked(100)
        lost_at = time.monotonic()
        for name in victims:
            cluster.processes[name].stop(signal.SIGKILL)
        await wait_for(lambda: not cluster.writable_nodes(), "every node read-only", timeout=15)
        read_only_s = time.monotonic() - lost_at
        # Past the services' health grace and Envoy's health checks: reads must still work.
        await asyncio.sleep(4.0)
        # Reads while no node is writable: the writers' own keys, through the gateway.
        reads = await read_back(load.gateway, load.writers.token, load.history)
        writes_during = [op for op in load.history.ops if op.kind == "write" and op.start > lost_at + read_only_s]
        await asyncio.sleep(max(down_for - (time.monotonic() - lost_at), 0))
        back_at = time.monotonic()
        for name in victims:
            await asyncio.to_thread(cluster.processes[name].start, False)
        await wait_for(lambda: cluster.leader() is not None, "a leader again", timeout=30)
        leader_back_s = time.monotonic() - back_at
        await load.until_acked(100)  # writes work again
        violations = await load.finish(lossless=True)
    figures = {
        "leader_before": leader,
        "all_read_only_after_s": round(read_only_s, 3),
        "reads_while_down": reads,
        "writes_while_down": len(writes_during),
        "writes_acked_while_down": sum(op.outcome == "acknowledged" for op in writes_during),
        "write_answers_while_down": sorted({op.detail for op in writes_during}),
        "leader_again_after_etcd_back_s": round(leader_back_s, 3),
        "acked_after_etcd_back": sum(
            op.outcome == "acknowledged" and op.start > back_at + leader_back_s for op in load.history.acked("write")
        ),
        **load.history.summary(),
    }
    return Outcome(figures, load.history, violations)


async def lagging_replica_kept_from_leading(cluster: HaCluster) -> Outcome:
    """The lag check. Node C stops receiving (its replication cut by hand, its agent
    paused) while writes are confirmed by the leader and node B. Then the leader's host
    dies (node and agent), B's agent is paused, and C's resumes: C sees only itself, so it
    must not lead; once B's agent is back, B (which holds every confirmed write) leads.
    An agent without the check promotes C, and the acknowledged writes it lacks are lost."""
    old = cluster.wait_for_leader()
    b, c = [n.name for n in cluster.topology.nodes if n.name != old]
    agent = {name: cluster.processes[f"agent-{name}"] for name in (old, b, c)}
    async with Load(cluster) as load:
        await load.until_acked(100)
        agent[c].send(signal.SIGSTOP)
        cluster.console(c, "box.cfg({replication = {}})")
        await load.until_acked(100)  # writes confirmed by the leader and b only
        agent[b].send(signal.SIGSTOP)
        cluster.processes[f"tarantool-{old}"].stop(signal.SIGKILL)
        agent[old].stop(signal.SIGKILL)
        killed_at = time.monotonic()
        agent[c].send(signal.SIGCONT)
        # The lease expires after the TTL; c's agent then decides, alone.
        await asyncio.sleep(cluster.topology.ttl + 3.0)
        leader_while_b_paused = cluster.leader()
        agent[b].send(signal.SIGCONT)
        await wait_for(lambda: cluster.leader() is not None, "a leader", timeout=30)
        new = cluster.leader()
        await load.until_acked(100)
        violations = await load.finish(lossless=True)
    figures = {
        "old": old,
        "lagging": c,
        "leader_while_only_the_lagging_node_could_decide": leader_while_b_paused,
        "new": new,
        "writes_failed_for_s": round(write_gap(load.history, killed_at), 3),
        **load.history.summary(),
    }
    return Outcome(figures, load.history, violations)


async def leader_agent_paused(cluster: HaCluster, *, lossless: bool) -> Outcome:
    """The leader's agent stops (SIGSTOP: hung, as after a long GC pause or a frozen VM)
    while its node runs on: nothing renews the node's deadline, so the node must fence
    itself on its own clock, before the lease can expire and a replica takes over."""
    old = cluster.wait_for_leader()
    cluster.supervise()
    agent = cluster.processes[f"agent-{old}"]
    async with Load(cluster) as load:
        await load.until_acked(100)
        paused_at = time.monotonic()
        agent.send(signal.SIGSTOP)
        fenced = asyncio.create_task(_first_moment(lambda: _ro(cluster, old), paused_at, timeout=20))
        await wait_for(lambda: cluster.leader() not in (None, old), "a new leader", timeout=30)
        new_leader_s = time.monotonic() - paused_at
        new = cluster.leader()
        await load.until_acked(100)
        fenced_s = await fenced
        violations = await load.finish(lossless)
    agent.send(signal.SIGCONT)
    rejoined_s = await wait_for(lambda: _follows(cluster, old, new), "the old leader following", timeout=90)
    violations += old_master_after_new(load.history, old, new)
    figures = {
        "old": old,
        "new": new,
        "old_leader_read_only_after_s": _round(fenced_s),
        "new_leader_after_s": round(new_leader_s, 3),
        "old_leader_rejoined_s": round(rejoined_s, 3),
        **_losses(load),
        **load.history.summary(),
    }
    return Outcome(figures, load.history, violations, load.unchecked)
