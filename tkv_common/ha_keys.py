"""Where the replica set's leadership lives in etcd: one fact for the agent, the services
and the `tkv-ha` command (docs/high-availability.md, "What is in etcd").

    <prefix>leader        the leader: JSON {name, tarantool, agent, writable, since}, under
                          the leader's lease, so it disappears when the lease expires
    <prefix>last_leader   the name of the most recent leader (no lease): its node is not a
                          replica whose lag counts when the next leader is chosen
    <prefix>replicaset    the replica set's UUID, recorded by its first leader: a node of
                          another replica set (a data dir recreated by mistake) never leads
    <prefix>maintenance   present: automatic failover is paused
    <prefix>switchover    JSON {to}: a planned switchover the leader carries out
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from .catalogue import SETTINGS
from .settings import Env

DEFAULT_PREFIX = SETTINGS["TKV_HA_ETCD_PREFIX"].default


@dataclass(frozen=True)
class Keys:
    prefix: str

    @classmethod
    def from_env(cls, env: Env) -> Keys:
        prefix = env.str("TKV_HA_ETCD_PREFIX")
        return cls(prefix if prefix.endswith("/") else prefix + "/")

    @property
    def leader(self) -> str:
        return self.prefix + "leader"

    @property
    def last_leader(self) -> str:
        return self.prefix + "last_leader"

    @property
    def replicaset(self) -> str:
        return self.prefix + "replicaset"

    @property
    def maintenance(self) -> str:
        return self.prefix + "maintenance"

    @property
    def switchover(self) -> str:
        return self.prefix + "switchover"


@dataclass(frozen=True)
class Leader:
    """The value of the leader key."""

    name: str
    tarantool: str  # host:port the services call
    agent: str  # host:port of its agent's HTTP endpoint
    writable: bool  # False between taking leadership and the node taking writes
    since: float  # wall-clock time leadership was taken, for people

    def encode(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def decode(cls, raw: bytes) -> Leader:
        data = json.loads(raw)
        return cls(
            str(data["name"]), str(data["tarantool"]), str(data["agent"]), bool(data["writable"]), float(data["since"])
        )


def etcd_endpoints(env: Env) -> tuple[str, ...]:
    """TKV_ETCD_ENDPOINTS: host:port,host:port (empty: no etcd, a single node or a replica
    set failed over by hand)."""
    return tuple(part.strip() for part in env.str("TKV_ETCD_ENDPOINTS").split(",") if part.strip())
