"""The failover agent's rules (tkv_ha/decision.py): who may lead, who has diverged."""

from tkv_ha.decision import NodeState, diverged, may_lead, replicas_needed

SET = "replica-set-1"


def node(vclock: dict[str, int], *, id_: int = 2, registered: int = 3, sync: bool = True, replicaset: str = SET):
    return NodeState(
        id=id_, uuid=f"uuid-{id_}", replicaset=replicaset, ro=True, vclock=vclock, registered=registered,
        sync=sync, sync_quorum=2,
    )  # fmt: skip


def test_a_candidate_needs_as_many_replicas_as_can_miss_a_confirmed_row():
    # 3 nodes, quorum 2: a confirmed row is on the old master and one of the 2 replicas.
    assert replicas_needed(3, sync=True, quorum=2) == 2
    # 5 nodes, quorum 3: on the master and 2 of the 4 replicas; any 3 replicas hold it.
    assert replicas_needed(5, sync=True, quorum=3) == 3
    # Asynchronous: a majority of the replicas.
    assert replicas_needed(3, sync=False, quorum=1) == 2


def test_a_replica_that_hears_from_the_other_and_is_not_behind_may_lead():
    me = node({"1": 100})
    verdict = may_lead(me, {"n1": None, "n3": node({"1": 100}, id_=3)}, previous_leader="n1", replicaset=SET)
    assert verdict.ok, verdict.reason


def test_a_replica_behind_another_may_not_lead():
    me = node({"1": 90})
    verdict = may_lead(me, {"n1": None, "n3": node({"1": 100}, id_=3)}, previous_leader="n1", replicaset=SET)
    assert not verdict.ok and "n3 has rows this node lacks" in verdict.reason


def test_a_replica_that_hears_from_no_other_may_not_lead():
    verdict = may_lead(node({"1": 100}), {"n1": None, "n3": None}, previous_leader="n1", replicaset=SET)
    assert not verdict.ok and "only 1 of the replicas answered, 2 are needed" in verdict.reason


def test_the_old_leaders_own_rows_do_not_count():
    # What only the old master has was never confirmed: it does not hold the others back.
    me = node({"1": 100})
    peers = {"n1": node({"1": 120}, id_=1), "n3": node({"1": 100}, id_=3)}
    assert may_lead(me, peers, previous_leader="n1", replicaset=SET).ok
    # ... but it does not count as a replica heard from either.
    assert not may_lead(me, {"n1": node({"1": 120}, id_=1), "n3": None}, previous_leader="n1", replicaset=SET).ok


def test_a_node_of_another_replica_set_never_leads():
    verdict = may_lead(node({"1": 5}, replicaset="other"), {"n3": node({"1": 5})}, previous_leader=None, replicaset=SET)
    assert not verdict.ok and "belongs to replica set other" in verdict.reason


def test_the_first_node_of_a_new_replica_set_leads_alone():
    assert may_lead(node({"1": 3}, registered=1), {"n2": None, "n3": None}, previous_leader=None, replicaset=None).ok


def test_a_node_with_rows_the_leader_lacks_has_diverged():
    leader = node({"1": 100, "2": 10}, id_=2)
    assert diverged(node({"1": 103}, id_=1), leader) == ["1"]
    assert diverged(node({"1": 100}, id_=1), leader) == []
    # Behind the leader is not diverged: it catches up.
    assert diverged(node({"1": 90}, id_=3), leader) == []


def test_the_state_of_a_node_reads_from_its_lua_table():
    state = NodeState.from_dict(
        {"id": 1, "uuid": "u", "replicaset": SET, "ro": False, "vclock": [], "registered": 1, "sync": True,
         "sync_quorum": 2, "follows": [], "upstreams": []}
    )  # fmt: skip
    # Lua sends an empty table as a list.
    assert state.vclock == {} and state.upstreams == {} and state.follows == ()
