"""The failover agent's settings, read once from the environment (docs/high-availability.md)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tkv_common.ha_keys import Keys, etcd_endpoints
from tkv_common.settings import Address, ConfigError, Env


def parse_peers(raw: str, name: str) -> dict[str, str]:
    """name=host:port,name=host:port: every node's agent (its own may be listed too)."""
    peers: dict[str, str] = {}
    for part in filter(None, (item.strip() for item in raw.split(","))):
        node, sep, address = part.partition("=")
        if not sep or not node:
            raise ConfigError(f"{name} must be name=host:port,..., got {part!r}")
        peers[node] = str(Address.parse(address, name))
    return peers


@dataclass(frozen=True)
class AgentSettings:
    name: str  # this node's name in the replica set (n1, n2, ...)
    listen: Address  # the agent's own HTTP endpoint: /state, /metrics
    tarantool: str  # host:port of this node, as the services and peers reach it
    console: Path  # the node's admin console socket
    peers: dict[str, str]  # the other nodes' agents, by name
    etcd: tuple[str, ...]
    keys: Keys
    ttl: int  # the leader lease's TTL in seconds
    fence_margin: float  # the node fences itself this long before the lease can expire
    promote_timeout: float  # how long settling the old master's queue may take

    @property
    def renew_every(self) -> float:
        # Six chances per TTL: an etcd leader election (a member lost) costs about a
        # second, and must not outlast the TTL - margin the node stays writable.
        return self.ttl / 6

    @classmethod
    def from_env(cls, env: Env) -> AgentSettings:
        name = env.str("TKV_HA_NAME")
        if not name:
            raise ConfigError("TKV_HA_NAME must name this node (n1, n2, ...)")
        console = env.str("TKV_TARANTOOL_CONSOLE_SOCKET")
        if not console:
            raise ConfigError("TKV_TARANTOOL_CONSOLE_SOCKET must give the node's admin console socket")
        endpoints = etcd_endpoints(env)
        if not endpoints:
            raise ConfigError("TKV_ETCD_ENDPOINTS must list etcd's client endpoints (host:port,...)")
        ttl = env.int("TKV_HA_TTL_SECONDS")
        margin = env.float("TKV_HA_FENCE_MARGIN_SECONDS")
        # The node's deadline is (renewal sent) + TTL - margin, and renewals are TTL/6
        # apart: a margin past half the TTL would leave an etcd election no room.
        if margin > ttl / 2:
            raise ConfigError(
                f"TKV_HA_FENCE_MARGIN_SECONDS ({margin}) must be at most half of TKV_HA_TTL_SECONDS ({ttl})"
            )
        peers = parse_peers(env.str("TKV_HA_PEERS"), "TKV_HA_PEERS")
        peers.pop(name, None)
        # The lag check hears from the other nodes' agents: without them, a node would
        # count itself the whole replica set and lead alone.
        if len(peers) < 2:
            raise ConfigError("TKV_HA_PEERS must list the agents of the other nodes (at least two), name=host:port,...")
        return cls(
            name=name,
            listen=env.address("TKV_HA_AGENT_LISTEN"),
            tarantool=str(env.address("TKV_TARANTOOL_LISTEN")),
            console=Path(console),
            peers=peers,
            etcd=endpoints,
            keys=Keys.from_env(env),
            ttl=ttl,
            fence_margin=margin,
            promote_timeout=env.float("TKV_HA_PROMOTE_TIMEOUT_SECONDS"),
        )
