"""The HA replica set's processes on one machine: 3 etcd members, 3 Tarantool nodes, an
agent beside each. One description, read by `make run-ha` (tkv_ha/localstack.py) and by
the tests (tests/ha/cluster.py), so both run exactly the same topology.

Each node's processes are given as (argv, environment additions); the caller adds the
common environment (PATH, TKV_DATA_DIR, secrets) and supervises them.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from tkv_common.catalogue import SETTINGS
from tkv_common.ha_keys import DEFAULT_PREFIX


@dataclass(frozen=True)
class NodeSpec:
    name: str
    tarantool_port: int
    agent_port: int
    etcd_client_port: int
    etcd_peer_port: int
    host: str = "127.0.0.1"

    @property
    def tarantool(self) -> str:
        return f"{self.host}:{self.tarantool_port}"

    @property
    def agent(self) -> str:
        return f"{self.host}:{self.agent_port}"

    @property
    def etcd_client(self) -> str:
        return f"{self.host}:{self.etcd_client_port}"

    @property
    def etcd_peer_url(self) -> str:
        return f"http://{self.host}:{self.etcd_peer_port}"


@dataclass
class Topology:
    data_dir: Path  # each node's state under <data_dir>/ha/<name>/
    nodes: list[NodeSpec]
    sync_quorum: int = 2  # 0: asynchronous replication
    ttl: int = SETTINGS["TKV_HA_TTL_SECONDS"].default
    fence_margin: float = SETTINGS["TKV_HA_FENCE_MARGIN_SECONDS"].default
    prefix: str = DEFAULT_PREFIX
    etcd_cluster_token: str = "tkv-ha"
    extra_node_env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def local(cls, data_dir: Path, **options) -> Topology:
        """`make run-ha`'s fixed local ports (docs/high-availability.md). etcd's are not its
        defaults (2379/2380): Debian's etcd-server package may run one there already."""
        nodes = [NodeSpec(f"n{i}", 3300 + i, 9710 + i, 23790 + i, 23800 + i) for i in (1, 2, 3)]
        return cls(data_dir, nodes, **options)

    def node(self, name: str) -> NodeSpec:
        return next(node for node in self.nodes if node.name == name)

    def node_dir(self, name: str) -> Path:
        return self.data_dir / "ha" / name

    def console(self, name: str) -> Path:
        return self.node_dir(name) / "console.sock"

    @property
    def etcd_endpoints(self) -> str:
        return ",".join(node.etcd_client for node in self.nodes)

    @property
    def tarantool_addresses(self) -> str:
        return ",".join(node.tarantool for node in self.nodes)

    @property
    def peers(self) -> str:
        return ",".join(f"{node.name}={node.agent}" for node in self.nodes)

    def etcd(self, name: str, etcd_binary: str = "etcd") -> tuple[list[str], dict[str, str]]:
        node = self.node(name)
        cluster = ",".join(f"{n.name}={n.etcd_peer_url}" for n in self.nodes)
        argv = [
            etcd_binary,
            "--name", node.name,
            "--data-dir", str(self.node_dir(name) / "etcd"),
            "--listen-client-urls", f"http://{node.etcd_client}",
            "--advertise-client-urls", f"http://{node.etcd_client}",
            "--listen-peer-urls", node.etcd_peer_url,
            "--initial-advertise-peer-urls", node.etcd_peer_url,
            "--initial-cluster", cluster,
            "--initial-cluster-token", self.etcd_cluster_token,
            "--initial-cluster-state", "new",
            # Loopback: raft heartbeats every 100 ms; a lost etcd leader is replaced within
            # about 0.6-1 s, well inside the TTL - margin a Tarantool leader stays writable
            # (etcd's tuning guide: election timeout at least 5 heartbeats).
            "--heartbeat-interval", "100",
            "--election-timeout", "600",
            # A member cut off and back must not depose a healthy etcd leader (its raised
            # term would): measured, without it a healed partition cost the leader a lease.
            "--pre-vote",
            "--logger", "zap",
            "--log-level", "warn",
        ]  # fmt: skip
        return argv, {}

    def tarantool(self, name: str, tarantool_binary: str = "tarantool") -> tuple[list[str], dict[str, str]]:
        node = self.node(name)
        env = {
            "TKV_HA": "true",
            "TKV_TARANTOOL_LISTEN": node.tarantool,
            "TKV_TARANTOOL_WORK_DIR": str(self.node_dir(name) / "tarantool"),
            "TKV_TARANTOOL_CONSOLE_SOCKET": str(self.console(name)),
            "TKV_TARANTOOL_REPLICATION": ",".join(n.tarantool for n in self.nodes if n.name != name),
            "TKV_TARANTOOL_SYNC_QUORUM": str(self.sync_quorum),
            "TKV_TARANTOOL_SERVE_REPLICAS": "true",
            **self.extra_node_env,
        }
        if name == self.nodes[0].name:
            # Creates the replica set on its first start; later starts ignore it.
            env["TKV_HA_BOOTSTRAP"] = "true"
        return [tarantool_binary, "tarantool/init.lua"], env

    def agent(self, name: str, python: str = sys.executable) -> tuple[list[str], dict[str, str]]:
        node = self.node(name)
        return [python, "-m", "tkv_ha", "agent"], {
            "TKV_HA_NAME": name,
            "TKV_HA_AGENT_LISTEN": node.agent,
            "TKV_HA_PEERS": self.peers,
            "TKV_HA_TTL_SECONDS": str(self.ttl),
            "TKV_HA_FENCE_MARGIN_SECONDS": str(self.fence_margin),
            "TKV_HA_ETCD_PREFIX": self.prefix,
            "TKV_ETCD_ENDPOINTS": self.etcd_endpoints,
            "TKV_TARANTOOL_LISTEN": node.tarantool,
            "TKV_TARANTOOL_CONSOLE_SOCKET": str(self.console(name)),
        }

    def services_env(self) -> dict[str, str]:
        """What auth_svc and kv_svc need to follow the leader."""
        return {
            "TKV_TARANTOOL_ADDR": self.tarantool_addresses,
            "TKV_ETCD_ENDPOINTS": self.etcd_endpoints,
            "TKV_HA_ETCD_PREFIX": self.prefix,
        }

    def operator_env(self) -> dict[str, str]:
        """What `tkv-ha status|switchover|maintenance` needs."""
        return {
            "TKV_ETCD_ENDPOINTS": self.etcd_endpoints,
            "TKV_HA_PEERS": self.peers,
            "TKV_HA_ETCD_PREFIX": self.prefix,
        }
