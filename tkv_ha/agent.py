"""The failover agent beside each Tarantool node: leadership is one etcd key under a lease.

    python -m tkv_ha agent        (settings: tkv_ha/settings.py, docs/high-availability.md)

A follower watches the leader key. When it disappears (the lease expired, or the leader
released it because its node died), each agent whose node holds every confirmed row
(tkv_ha/decision.py) tries to create it; etcd lets exactly one succeed. The winner
settles the old master's queue and makes its node writable. The leader renews its lease
every TTL/6 and, after each renewal, extends its node's writable time to the moment the
renewal was sent + TTL - margin: the node fences itself (read-only) at that moment on its
own clock unless renewed again (tarantool/tkv/ha.lua), before the lease can expire for
anyone else, even if this process hangs or dies. No vote is ours: etcd decides.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import replace

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from tkv_common.etcd import Etcd, EtcdRejected, EtcdUnavailable
from tkv_common.ha_keys import Leader

from . import decision
from .decision import NodeState
from .http import Server, get_json
from .node import Node, NodeUnavailable
from .settings import AgentSettings

log = logging.getLogger(__name__)

# How soon a failed lease renewal is tried again.
RETRY_SECONDS = 0.2


class Metrics:
    """The agent's own /metrics (docs/operations.md, "High availability")."""

    def __init__(self, name: str):
        self.registry = CollectorRegistry()
        self.leader = Gauge("tkv_ha_leader", "1 while this agent holds leadership", ("node",), registry=self.registry)
        self.failovers = Counter(
            "tkv_ha_leadership_taken",
            "Times this agent took leadership (a failover or switchover to its node)",
            ("node",),
            registry=self.registry,
        )
        self.renewal_failures = Counter(
            "tkv_ha_lease_renewal_failures",
            "Lease renewals that failed (etcd unreachable or without quorum)",
            ("node",),
            registry=self.registry,
        )
        self.fenced = Counter(
            "tkv_ha_fenced", "Times the leader's node was made read-only on lost leadership", ("node",),
            registry=self.registry,
        )  # fmt: skip
        self.lag = Gauge(
            "tkv_ha_replication_lag_seconds",
            "This node's replication lag behind the leader (0 on the leader)",
            ("node",),
            registry=self.registry,
        )
        self.node_up = Gauge("tkv_ha_node_up", "1 while the node's console answers", ("node",), registry=self.registry)
        self.etcd_up = Gauge("tkv_ha_etcd_up", "1 while etcd answered the last call", ("node",), registry=self.registry)
        self.maintenance = Gauge(
            "tkv_ha_maintenance", "1 while automatic failover is paused", ("node",), registry=self.registry
        )
        for metric in (self.leader, self.failovers, self.renewal_failures, self.fenced, self.lag, self.node_up,
                       self.etcd_up, self.maintenance):  # fmt: skip
            metric.labels(name)
        self.name = name


class Agent:
    def __init__(self, settings: AgentSettings, etcd: Etcd | None = None):
        self.settings = settings
        # A short wait per endpoint: a member without a quorum must not eat the deadline.
        self.etcd = etcd or Etcd(settings.etcd, timeout=min(0.3, settings.renew_every))
        self.node = Node(settings.console)
        # Promotion may wait on the synchronous queue: its own console line, so renewals
        # and fencing go on meanwhile.
        self._promoting_node = Node(settings.console)

        self.metrics = Metrics(settings.name)
        self._lease: int | None = None
        self._valid_until = 0.0  # monotonic: the node's writable deadline we last set
        self._last_leader: str | None = None
        self._said: dict[str, float] = {}  # message -> last logged, to keep waits quiet
        self._server = Server(
            settings.listen.host, settings.listen.port, {"/state": self._state_route, "/metrics": self._metrics_route}
        )

    # -- HTTP ----------------------------------------------------------------------------

    async def _state_route(self) -> tuple[int, str, bytes]:
        try:
            state = await self.node.state()
        except NodeUnavailable as error:
            body = {"name": self.settings.name, "leading": self._lease is not None, "error": str(error)}
            return 503, "application/json", json.dumps(body).encode()
        body = {"name": self.settings.name, "leading": self._lease is not None, "node": state.__dict__}
        return 200, "application/json", json.dumps(body).encode()

    async def _metrics_route(self) -> tuple[int, str, bytes]:
        return 200, "text/plain; version=0.0.4", generate_latest(self.metrics.registry)

    # -- the loop ----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        await self._server.start()
        log.info("agent started", extra={"node": self.settings.name, "listen": str(self.settings.listen)})
        try:
            while not stop.is_set():
                try:
                    if self._lease is not None:
                        await self._lead(stop)
                    else:
                        await self._follow(stop)
                except EtcdUnavailable as error:
                    self.metrics.etcd_up.labels(self.settings.name).set(0)
                    self._say(logging.WARNING, "etcd is unavailable", error=str(error))
                    await _sleep(stop, 0.3)
                except NodeUnavailable as error:
                    self._say(logging.WARNING, "the node does not answer", error=str(error))
                    await _sleep(stop, 0.3)
                except Exception:
                    # A bug must not leave the node without its agent: logged, then on. The
                    # node fences itself meanwhile if it led (its own deadline).
                    log.exception("agent step failed", extra={"node": self.settings.name})
                    await _sleep(stop, 1.0)
        finally:
            if self._lease is not None:
                # A clean stop hands leadership on at once instead of after the TTL.
                await self._release("the agent is stopping")
            await self._server.close()
            await self.node.close()
            await self._promoting_node.close()
            await self.etcd.close()

    def _say(self, level: int, message: str, every: float = 5.0, **fields) -> None:
        now = time.monotonic()
        if now - self._said.get(message, -every) >= every:
            self._said[message] = now
            log.log(level, message, extra={"node": self.settings.name, **fields})

    # -- leading -----------------------------------------------------------------------

    async def _lead(self, stop: asyncio.Event) -> None:
        name = self.settings.name
        started = time.monotonic()
        try:
            state = await self.node.state()
        except NodeUnavailable as error:
            self.metrics.node_up.labels(name).set(0)
            await self._release(f"its node does not answer ({error})", down=error.down)
            return
        self.metrics.node_up.labels(name).set(1)
        self.metrics.lag.labels(name).set(0)  # the leader lags behind no one
        if state.ro:
            # Restarted (a node starts read-only), or fenced: either way it does not lead
            # now, and takes no writes: the lease can go at once.
            await self._release("its node is read-only (restarted or fenced)", down=True)
            return
        sent = time.monotonic()
        try:
            left = await self.etcd.keep_alive(self._lease)
        except EtcdUnavailable as error:
            left = None
            self.metrics.renewal_failures.labels(name).inc()
            self.metrics.etcd_up.labels(name).set(0)
            self._say(logging.WARNING, "cannot renew the leader lease", every=1.0, error=str(error))
        if left == 0:
            await self._step_down("its lease expired")
            return
        if left:
            self.metrics.etcd_up.labels(name).set(1)
            self._valid_until = sent + self.settings.ttl - self.settings.fence_margin
            try:
                still_writable = await self.node.hold(self._valid_until)
            except NodeUnavailable as error:
                await self._release(f"its node does not answer ({error})", down=error.down)
                return
            if not still_writable:
                await self._step_down("its node fenced itself (a renewal came too late)")
                return
        if time.monotonic() >= self._valid_until:
            # The node has fenced itself by now (its own deadline); this says so, and stops.
            await self._step_down("the lease could not be renewed in time")
            return
        if left:
            await self._carry_out_switchover(state)
            if self._lease is None:
                return
        # After a failed renewal, try again soon: an etcd leader election (a member lost)
        # takes about a second, and the node's deadline is TTL - margin after the last one.
        next_try = started + (self.settings.renew_every if left else RETRY_SECONDS)
        pause = min(next_try, self._valid_until) - time.monotonic()
        await _sleep(stop, max(pause, 0))

    async def _step_down(self, why: str) -> None:
        """Leadership is lost (etcd unreachable, or the lease gone): read-only now."""
        log.warning("lost leadership: fencing the node", extra={"node": self.settings.name, "why": why})
        self.metrics.fenced.labels(self.settings.name).inc()
        self._lease = None
        self.metrics.leader.labels(self.settings.name).set(0)
        with contextlib.suppress(NodeUnavailable):  # if so, its own deadline fences it
            await self.node.demote(f"leadership lost: {why}")

    async def _release(self, why: str, down: bool = False) -> None:
        """Gives leadership up. The lease is revoked (a replica takes over now rather than
        after the TTL) only once the node is known to take no writes: demoted, read-only,
        or gone (`down`: nothing listens on its console). A node that merely does not
        answer may still serve clients until its deadline: then the lease runs out, and
        the node has fenced itself before it can (the margin)."""
        lease, self._lease = self._lease, None
        self.metrics.leader.labels(self.settings.name).set(0)
        log.warning("releasing leadership", extra={"node": self.settings.name, "why": why})
        safe = down
        if not safe:
            try:
                safe = await self.node.demote(f"leadership released: {why}")
            except NodeUnavailable as error:
                safe = error.down
        if lease is not None and safe:
            with contextlib.suppress(EtcdUnavailable):  # if so, it expires by itself
                await self.etcd.revoke(lease)

    async def _carry_out_switchover(self, state: NodeState) -> None:
        """A planned switchover (`tkv-ha switchover TO`): read-only, wait until the target
        has every row, then release; the target takes leadership (others defer to it)."""
        keys = self.settings.keys
        everything = {kv.key: kv for kv in await self.etcd.get_prefix(keys.prefix)}
        self.metrics.maintenance.labels(self.settings.name).set(1 if keys.maintenance in everything else 0)
        kv = everything.get(keys.switchover)
        if kv is None:
            return
        target = json.loads(kv.value).get("to")
        if target == self.settings.name or target not in self.settings.peers:
            await self.etcd.delete(keys.switchover)
            return
        log.warning("switchover requested", extra={"node": self.settings.name, "to": target})
        # Read-only, the queue kept: what waits is confirmed while this node still leads.
        await self.node.demote(f"switchover to {target}", keep_queue=True)
        # The lease is renewed while the target catches up; the wait is bounded well within
        # the node's deadline, so leadership is never lost on the way.
        deadline = time.monotonic() + self.settings.promote_timeout
        while time.monotonic() < deadline:
            mine = await self.node.state()
            reply = await get_json(self.settings.peers[target], "/state", timeout=0.5)
            theirs = NodeState.from_dict(reply["node"]) if reply and "node" in reply else None
            # Released only once the node says its kept queue is settled (it has written its
            # last CONFIRM or ROLLBACK and writes nothing more; ha.lua) and the target holds
            # all of it: otherwise the target, promoting, would decide on its own the rows
            # this node goes on to confirm, and the two histories would part.
            if theirs is not None and mine.queue_settled and not decision.ahead_of(mine, theirs):
                await self._release(f"switchover to {target}", down=True)
                return
            sent = time.monotonic()
            if await self.etcd.keep_alive(self._lease):
                self._valid_until = sent + self.settings.ttl - self.settings.fence_margin
            await asyncio.sleep(0.05)
        log.error("switchover abandoned: the target did not catch up; leadership released", extra={"to": target})
        await self.etcd.delete(keys.switchover)
        await self._release(f"switchover to {target} abandoned", down=True)

    # -- following ---------------------------------------------------------------------

    async def _follow(self, stop: asyncio.Event) -> None:
        name, keys = self.settings.name, self.settings.keys
        # The node first: its gauge tells the truth even while etcd does not answer.
        try:
            state = await self.node.state()
            self.metrics.node_up.labels(name).set(1)
        except NodeUnavailable:
            self.metrics.node_up.labels(name).set(0)
            state = None
        everything = {kv.key: kv for kv in await self.etcd.get_prefix(keys.prefix)}
        self.metrics.etcd_up.labels(name).set(1)
        self.metrics.maintenance.labels(name).set(1 if keys.maintenance in everything else 0)
        leader_kv = everything.get(keys.leader)
        if leader_kv is not None:
            leader = Leader.decode(leader_kv.value)
            self._last_leader = leader.name
            if leader.name == name:
                # Our own key, from before this agent restarted. The node may still take
                # writes until its last deadline: read-only first, then the key goes.
                if state is not None and await self.node.demote("the agent restarted"):
                    with contextlib.suppress(EtcdUnavailable):
                        await self.etcd.revoke(leader_kv.lease)
                await _sleep(stop, 0.2)
                return
            if state is not None:
                await self._follow_leader(state, leader)
            await self.etcd.wait_change(keys.leader, leader_kv.mod_revision, timeout=1.0)
            return
        if state is None:
            await _sleep(stop, 0.2)
            return
        if not state.ro:
            # Writable with no leader: a node must never take writes without the lease.
            await self.node.demote("no leader holds the lease")
        if keys.maintenance in everything:
            self._say(logging.INFO, "no leader, and maintenance mode pauses failover")
            await _sleep(stop, 0.5)
            return
        switchover = everything.get(keys.switchover)
        if switchover is not None and json.loads(switchover.value).get("to") not in (None, name):
            await _sleep(stop, 0.1)  # the switchover's target takes it
            return
        last = everything.get(keys.last_leader)
        replicaset = everything.get(keys.replicaset)
        peers = await self._peer_states()
        verdict = decision.may_lead(
            state,
            peers,
            previous_leader=last.value.decode() if last else self._last_leader,
            replicaset=replicaset.value.decode() if replicaset else None,
        )
        if not verdict.ok:
            self._say(logging.WARNING, "not taking leadership", every=2.0, why=verdict.reason)
            await _sleep(stop, 0.1)
            return
        await self._take_leadership(state, verdict.reason, switchover is not None)

    async def _peer_states(self) -> dict[str, NodeState | None]:
        names = list(self.settings.peers)
        replies = await asyncio.gather(*(get_json(self.settings.peers[n], "/state", timeout=0.5) for n in names))
        return {
            n: NodeState.from_dict(reply["node"]) if reply and "node" in reply else None
            for n, reply in zip(names, replies, strict=True)
        }

    async def _follow_leader(self, state: NodeState, leader: Leader) -> None:
        """A replica: read-only, following the leader once its history is checked."""
        name = self.settings.name
        if not state.ro:
            await self.node.demote(f"{leader.name} leads")
        upstream = state.upstreams
        lags = [link.get("lag") or 0.0 for link in upstream.values() if isinstance(link, dict)]
        self.metrics.lag.labels(name).set(max(lags, default=0.0))
        if state.follows == (leader.tarantool,):
            return
        # Nothing more from the old leader while this node is compared with the new one.
        if state.follows:
            await self.node.unfollow()
            state = await self.node.state()
        reply = await get_json(leader.agent, "/state", timeout=0.5)
        if not reply or "node" not in reply:
            return  # asked again on the next round
        theirs = NodeState.from_dict(reply["node"])
        if theirs.replicaset != state.replicaset:
            if state.registered == 1:
                # A replica set of its own and nothing else: the bootstrapping node started
                # on an empty data dir after the set existed (its data lost). It never led
                # (its replica set is not the recorded one), so it holds nothing: it joins.
                log.error("this node created a replica set of its own: rebuilding it from the leader",
                          extra={"node": name, "mine": state.replicaset, "leader": theirs.replicaset})  # fmt: skip
                await self.node.rebuild(f"a replica set of its own, not {leader.name}'s")
                return
            self._say(logging.ERROR, "this node belongs to another replica set than the leader; not following",
                      mine=state.replicaset, leader=theirs.replicaset)  # fmt: skip
            return
        extra = decision.diverged(state, theirs)
        if extra:
            try:
                rows = await self.node.rows_past(theirs.vclock)
            except NodeUnavailable as error:  # the summary is for the log: never a reason to wait
                rows = {"summary_failed": str(error)}
            log.error(
                "this node has rows the leader lacks (never confirmed by a quorum): rebuilding it from the leader",
                extra={
                    "node": name,
                    "leader": leader.name,
                    "replica_ids": extra,
                    "rows": rows.get("rows"),
                    "lsn_ranges": rows.get("lsns"),
                    "spaces": rows.get("spaces"),
                },
            )
            await self.node.rebuild(f"diverged from {leader.name} (replica ids {', '.join(extra)})")
            return
        await self.node.follow(leader.tarantool)
        log.info("following the leader", extra={"node": name, "leader": leader.name})

    async def _take_leadership(self, state: NodeState, why: str, switchover: bool) -> None:
        settings, keys = self.settings, self.settings.keys
        sent = time.monotonic()
        lease = await self.etcd.grant(settings.ttl)
        leader = Leader(settings.name, settings.tarantool, str(settings.listen), writable=False, since=time.time())
        # The last leader's name goes with the key, in one transaction: never stale.
        try:
            also = {keys.last_leader: settings.name}
            created = await self.etcd.create(keys.leader, leader.encode(), lease, also=also)
        except EtcdRejected as error:
            # The lease expired before the key could be written: this process stalled for a
            # whole TTL (seen on an overloaded host). Nothing was taken; the next round
            # decides afresh.
            log.warning("leadership not taken: the new lease expired first", extra={"node": settings.name,
                                                                                  "error": str(error)})  # fmt: skip
            return
        if not created:
            await self.etcd.revoke(lease)
            return
        self._valid_until = sent + settings.ttl - settings.fence_margin
        self._lease = lease
        log.warning("took leadership", extra={"node": settings.name, "why": why, "vclock": state.vclock})
        # Renewals go on while the node settles the old master's queue.
        renewing = asyncio.create_task(self._keep_renewing_while_promoting())
        try:
            writable = await self._promoting_node.promote(self._valid_until, timeout=settings.promote_timeout)
        except NodeUnavailable as error:
            writable = False
            log.error("promotion failed", extra={"node": settings.name, "error": str(error)})
        finally:
            renewing.cancel()
        if not writable or self._lease is None:
            await self._release("its node could not be made writable")
            return
        if not await self.etcd.put_if_lease(keys.leader, replace(leader, writable=True).encode(), lease):
            await self._release("the lease was lost while promoting")
            return
        self.metrics.leader.labels(settings.name).set(1)
        self.metrics.failovers.labels(settings.name).inc()
        await self.etcd.create(keys.replicaset, state.replicaset.encode())
        if switchover:
            await self.etcd.delete(keys.switchover)
        log.warning(
            "leading: the node takes writes", extra={"node": settings.name, "took_s": round(time.monotonic() - sent, 3)}
        )

    async def _keep_renewing_while_promoting(self) -> None:
        while self._lease is not None:
            await asyncio.sleep(self.settings.renew_every)
            sent = time.monotonic()
            try:
                if await self.etcd.keep_alive(self._lease):
                    self._valid_until = sent + self.settings.ttl - self.settings.fence_margin
                    await self.node.hold(self._valid_until)
            except (EtcdUnavailable, NodeUnavailable):
                self.metrics.renewal_failures.labels(self.settings.name).inc()


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    """Sleeps `seconds`, or less if the agent is stopping."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
