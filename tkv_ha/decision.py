"""The agent's rules, as pure functions: may this node lead, has a node diverged.

Why the counts below. With synchronous replication a transaction is confirmed once
`quorum` nodes (the master among them) have it in their WAL. When the master is gone, the
confirmed transactions are each on at least `quorum - 1` of the remaining replicas. Any
`replicas - (quorum - 1) + 1` replicas therefore include one that has each of them: if the
candidate knows that many replicas' vclocks (its own included) and none is ahead of its
own, it holds every confirmed transaction. Fewer known, and it cannot tell, so it waits.
Patroni checks a candidate's lag against the other members in the same spirit.

With asynchronous replication nothing is confirmed by anyone but the master: the rule
asks for a majority of the replicas and promotes the most advanced of those it can see.
The writes the master had not yet sent are lost; that is what asynchronous means.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class NodeState:
    """What a node's `tkv.ha.state()` reports (tarantool/tkv/ha.lua)."""

    id: int
    uuid: str
    replicaset: str
    ro: bool
    vclock: dict[str, int]
    registered: int
    sync: bool
    sync_quorum: int
    follows: tuple[str, ...] = ()
    writable_for: float = 0.0
    upstreams: dict = field(default_factory=dict)
    queue_settled: bool = False

    @classmethod
    def from_dict(cls, data: dict) -> NodeState:
        upstreams = data.get("upstreams") or {}
        return cls(
            id=int(data["id"]),
            uuid=str(data["uuid"]),
            replicaset=str(data["replicaset"]),
            ro=bool(data["ro"]),
            # Lua encodes an empty table as a list.
            vclock={str(k): int(v) for k, v in (data.get("vclock") or {}).items()}
            if isinstance(data.get("vclock"), dict)
            else {},
            registered=int(data["registered"]),
            sync=bool(data["sync"]),
            sync_quorum=int(data["sync_quorum"]),
            follows=tuple(data.get("follows") or ()),
            writable_for=float(data.get("writable_for") or 0.0),
            upstreams=upstreams if isinstance(upstreams, dict) else {},
            queue_settled=bool(data.get("queue_settled")),
        )


@dataclass(frozen=True)
class Decision:
    ok: bool
    reason: str


def ahead_of(other: NodeState, mine: NodeState) -> list[str]:
    """The replica ids whose rows `other` has and `mine` lacks."""
    return sorted(id_ for id_, lsn in other.vclock.items() if lsn > mine.vclock.get(id_, 0))


def replicas_needed(registered: int, sync: bool, quorum: int) -> int:
    """How many replicas' vclocks (the candidate's included) a candidate must know."""
    replicas = max(registered - 1, 0)
    if sync:
        return max(replicas - (quorum - 1) + 1, 1)
    return replicas // 2 + 1


def may_lead(
    me: NodeState,
    peers: dict[str, NodeState | None],
    *,
    previous_leader: str | None,
    replicaset: str | None,
) -> Decision:
    """Whether `me` may take leadership now. `peers`: every other configured node by name,
    None where it could not be asked; `previous_leader`: the last leader's name (its own
    vclock does not count: what only it has was never confirmed, or is lost with
    asynchronous mode). The replica set's size is the configured nodes' count, not
    Tarantool's registrations: a rebuilt node registers anew, and its old registration
    must not count as a member that has to be heard from."""
    if replicaset is not None and me.replicaset != replicaset:
        return Decision(False, f"this node belongs to replica set {me.replicaset}, not {replicaset}")
    replicas = {name: state for name, state in peers.items() if name != previous_leader and state is not None}
    for name, state in replicas.items():
        if state.replicaset != me.replicaset:
            continue  # not one of ours: it says nothing about our history
        ahead = ahead_of(state, me)
        if ahead:
            return Decision(False, f"{name} has rows this node lacks (replica ids {', '.join(ahead)})")
    known = 1 + sum(state.replicaset == me.replicaset for state in replicas.values())
    if me.registered <= 1:
        return Decision(True, "the replica set has no other member yet")
    needed = replicas_needed(len(peers) + 1, me.sync, me.sync_quorum)
    if known < needed:
        return Decision(
            False,
            f"only {known} of the replicas answered, {needed} are needed to be sure no confirmed "
            "transaction is missing here",
        )
    return Decision(True, f"holds every row of the {known} replicas it could ask")


def diverged(me: NodeState, leader: NodeState) -> list[str]:
    """The replica ids of rows this node has and the leader lacks: rows no quorum
    confirmed (an old master's last ones, or what it passed on before it died). Such a node
    is rebuilt from the leader; following it would keep them, and they were never
    acknowledged. `me` must be read before `leader`, so the leader's own rows are never
    mistaken for this node's lead."""
    return ahead_of(me, leader)
