"""The failover agent's steps against a fake etcd and a fake node: the orders that keep two
nodes from taking writes at once (tkv_ha/agent.py). The end-to-end tests in tests/ha run
the same steps against real processes; these pin the order of each step's calls."""

import asyncio
import time
from pathlib import Path

import pytest

from tkv_common.etcd import EtcdRejected, EtcdUnavailable, KeyValue
from tkv_common.ha_keys import Keys, Leader
from tkv_common.settings import Address
from tkv_ha import agent as agent_module
from tkv_ha.agent import Agent
from tkv_ha.decision import NodeState
from tkv_ha.node import NodeUnavailable
from tkv_ha.settings import AgentSettings

KEYS = Keys("/tkv/ha/")


def settings() -> AgentSettings:
    return AgentSettings(
        name="n1", listen=Address("127.0.0.1", 0), tarantool="127.0.0.1:3301", console=Path("/nonexistent"),
        peers={"n2": "127.0.0.1:1", "n3": "127.0.0.1:2"}, etcd=("127.0.0.1:3",), keys=KEYS, ttl=3,
        fence_margin=1.0, promote_timeout=5.0,
    )  # fmt: skip


def state(ro: bool) -> NodeState:
    return NodeState(id=1, uuid="u1", replicaset="rs", ro=ro, vclock={"1": 10}, registered=3, sync=True,
                     sync_quorum=2)  # fmt: skip


class FakeNode:
    """Records calls; `fail` maps a call to the NodeUnavailable it raises."""

    def __init__(self, ro: bool = False, writable_after_hold: bool = True):
        self.calls: list[str] = []
        self.ro = ro
        self.writable_after_hold = writable_after_hold
        self.fail: dict[str, NodeUnavailable] = {}

    async def _call(self, name: str):
        self.calls.append(name)
        if name in self.fail:
            raise self.fail[name]

    async def state(self) -> NodeState:
        await self._call("state")
        return state(self.ro)

    async def hold(self, deadline: float) -> bool:
        await self._call("hold")
        self.deadline = deadline
        return self.writable_after_hold

    async def demote(self, why: str, keep_queue: bool = False) -> bool:
        await self._call("demote")
        self.ro = True
        return True

    async def close(self) -> None:
        pass


class FakeEtcd:
    def __init__(self, keys: dict[str, KeyValue] | None = None, renew: int | None = 3):
        self.calls: list[str] = []
        self.keys = keys or {}
        self.renew = renew  # None: etcd does not answer

    async def keep_alive(self, lease: int) -> int:
        self.calls.append("keep_alive")
        if self.renew is None:
            raise EtcdUnavailable("down")
        return self.renew

    async def revoke(self, lease: int) -> None:
        self.calls.append("revoke")

    async def get_prefix(self, prefix: str) -> list[KeyValue]:
        return list(self.keys.values())

    async def wait_change(self, key: str, after_revision: int, timeout: float) -> bool:
        return False

    async def close(self) -> None:
        pass


def leading_agent(node: FakeNode, etcd: FakeEtcd) -> Agent:
    agent = Agent(settings(), etcd=etcd)
    agent.node = node
    agent._lease = 42
    agent._valid_until = time.monotonic() + 2.0
    return agent


async def test_a_renewal_extends_the_node_deadline_to_when_it_was_sent_plus_ttl_minus_margin():
    node, etcd = FakeNode(), FakeEtcd()
    agent = leading_agent(node, etcd)
    before = time.monotonic()
    await agent._lead(asyncio.Event())
    assert node.calls[:2] == ["state", "hold"] and etcd.calls == ["keep_alive"]
    # Absolute, and counted from before the renewal was sent: never later than that.
    assert before + 2.0 <= node.deadline <= time.monotonic() + 2.0
    assert agent._lease == 42


async def test_a_node_that_fenced_itself_ends_the_leadership():
    node, etcd = FakeNode(writable_after_hold=False), FakeEtcd()
    agent = leading_agent(node, etcd)
    await agent._lead(asyncio.Event())
    assert agent._lease is None and "demote" in node.calls


async def test_a_leader_that_cannot_renew_in_time_steps_down():
    node, etcd = FakeNode(), FakeEtcd(renew=None)
    agent = leading_agent(node, etcd)
    agent._valid_until = time.monotonic() - 0.01  # the deadline has passed
    await agent._lead(asyncio.Event())
    assert agent._lease is None and node.calls[-1] == "demote"
    assert "revoke" not in etcd.calls  # it could not reach etcd anyway; the lease runs out


async def test_a_hung_node_keeps_the_lease_until_it_expires():
    # A console that times out proves nothing: the node may still take writes until its
    # deadline. Revoking now would let a replica lead beside it.
    node, etcd = FakeNode(), FakeEtcd()
    node.fail = {"state": NodeUnavailable("timeout"), "demote": NodeUnavailable("timeout")}
    agent = leading_agent(node, etcd)
    await agent._lead(asyncio.Event())
    assert agent._lease is None and "revoke" not in etcd.calls


async def test_a_dead_node_gives_the_lease_up_at_once():
    node, etcd = FakeNode(), FakeEtcd()
    node.fail = {"state": NodeUnavailable("refused", down=True)}
    agent = leading_agent(node, etcd)
    await agent._lead(asyncio.Event())
    assert agent._lease is None and etcd.calls == ["revoke"]


async def test_a_restarted_agent_demotes_its_node_before_letting_its_old_key_go():
    leader = Leader("n1", "127.0.0.1:3301", "127.0.0.1:0", writable=True, since=0.0)
    key = KeyValue(KEYS.leader, leader.encode(), lease=7, mod_revision=5, create_revision=5)
    node, etcd = FakeNode(ro=False), FakeEtcd({KEYS.leader: key})
    order: list[str] = []
    node_demote, etcd_revoke = node.demote, etcd.revoke

    async def demote(why, keep_queue=False):
        order.append("demote")
        return await node_demote(why, keep_queue)

    async def revoke(lease):
        order.append("revoke")
        await etcd_revoke(lease)

    node.demote, etcd.revoke = demote, revoke
    agent = Agent(settings(), etcd=etcd)
    agent.node = node
    await agent._follow(asyncio.Event())
    assert order == ["demote", "revoke"]


async def test_a_switchover_waits_until_the_old_leaders_queue_has_settled(monkeypatch):
    # The demoted leader still decides its kept queue (its CONFIRMs are still to come) for
    # three checks, while the target already holds everything it has so far. Releasing then
    # would let the target decide those transactions on its own.
    settled = iter([False, False, False, True])
    node, etcd = FakeNode(), FakeEtcd()
    etcd.keys = {KEYS.switchover: KeyValue(KEYS.switchover, b'{"to": "n2"}', lease=0, mod_revision=1,
                                           create_revision=1)}  # fmt: skip
    seen: list[bool] = []

    async def settling_state() -> NodeState:
        node.calls.append("state")
        seen.append(next(settled))
        return NodeState(id=1, uuid="u1", replicaset="rs", ro=True, vclock={"1": 12}, registered=3, sync=True,
                         sync_quorum=2, queue_settled=seen[-1])  # fmt: skip

    async def target_state(address, path, timeout):  # the target always holds what n1 has
        return {"node": {"id": 2, "uuid": "u2", "replicaset": "rs", "ro": True, "vclock": {"1": 12},
                         "registered": 3, "sync": True, "sync_quorum": 2}}  # fmt: skip

    async def delete(key):
        etcd.calls.append("delete")

    node.state, etcd.delete = settling_state, delete
    monkeypatch.setattr(agent_module, "get_json", target_state)
    agent = leading_agent(node, etcd)
    await agent._carry_out_switchover(state(ro=False))
    assert etcd.calls[-1] == "revoke"  # released...
    assert seen == [False, False, False, True]  # ...only once the node said its queue was settled


async def test_a_lease_that_expires_before_the_leader_key_is_written_takes_nothing():
    # A process stalled for a whole TTL between granting its lease and writing the key:
    # etcd refuses the write ("requested lease not found"). The round ends quietly; the
    # node is never promoted and nothing is revoked twice.
    node, etcd = FakeNode(ro=True), FakeEtcd()

    async def grant(ttl):
        etcd.calls.append("grant")
        return 7

    async def create(key, value, lease, also=None):
        etcd.calls.append("create")
        raise EtcdRejected("etcd refused the request: NOT_FOUND etcdserver: requested lease not found")

    etcd.grant, etcd.create = grant, create
    agent = Agent(settings(), etcd=etcd)
    agent.node = node
    try:
        await agent._take_leadership(state(ro=True), "test", switchover=False)
    except EtcdRejected as error:
        pytest.fail(f"the agent's round failed: {error}")
    assert etcd.calls == ["grant", "create"]
    assert agent._lease is None and "promote" not in node.calls
