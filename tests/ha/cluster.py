"""The HA replica set as real processes for the tests: 3 etcd members, 3 Tarantool nodes
with their agents (tkv_ha/topology.py, the same topology `make run-ha` starts), and the
services and Envoy of tests/stack.py pointed at all three nodes and at etcd.

Every port is picked at random on 127.0.0.1. With `cgroups=True` each node's processes
(its etcd member, Tarantool and agent) start in a cgroup of their own, so a test can cut
a node off with nft (tests/ha/partition.py).
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.stack import ROOT, Process, Stack, auth_svc, envoy, kv_svc, require_binary, wait_until
from tkv_ha.topology import NodeSpec, Topology

from .partition import Cgroups


def _free_ports(count: int, taken: set[int]) -> list[int]:
    """`count` distinct free ports, none of them in `taken` (the stack's own)."""
    from tests.stack import free_port

    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in taken and port not in ports:
            ports.append(port)
    return ports


def _agent_state(address: str) -> dict | None:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://{address}/state", timeout=1) as reply:
            return json.loads(reply.read())
    except (OSError, ValueError):
        return None


@dataclass
class HaCluster:
    stack: Stack  # the services' ports, data dir and environment
    topology: Topology
    cgroups: Cgroups | None = None
    processes: dict[str, Process] = field(default_factory=dict)
    # Names of the processes started again when they exit, as supervisord does under
    # `make run-ha` (a node that rebuilds itself exits on purpose); see `supervise`.
    supervised: set[str] = field(default_factory=set)
    restarts: list[tuple[str, float]] = field(default_factory=list)
    _supervisor: threading.Thread | None = None
    _stopping: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def create(cls, tmp_path: Path, *, sync: bool = True, ttl: int = 3, cgroups: bool = False, **options) -> HaCluster:
        stack = Stack(tmp_path / "stack")
        taken = {stack.tarantool_port, stack.auth_port, stack.kv_port, stack.gateway_port, stack.admin_port,
                 stack.auth_metrics_port, stack.kv_metrics_port}  # fmt: skip
        ports = _free_ports(12, taken)
        nodes = [NodeSpec(f"n{i + 1}", *ports[4 * i : 4 * i + 4]) for i in range(3)]
        topology = Topology(
            stack.data_dir, nodes, sync_quorum=2 if sync else 0, ttl=ttl,
            etcd_cluster_token=f"tkv-test-{ports[0]}", **options,
        )  # fmt: skip
        stack.extra_env.update(topology.services_env())
        return cls(stack, topology, Cgroups.create(f"tkvha{ports[0]}", [n.name for n in nodes]) if cgroups else None)

    # -- processes -------------------------------------------------------------------

    def _wrap(self, node: str) -> list[str]:
        return self.cgroups.wrap(node) if self.cgroups else []

    def etcd(self, name: str) -> Process:
        argv, env = self.topology.etcd(name, require_binary("etcd"))
        port = self.topology.node(name).etcd_client_port
        return Process(f"etcd-{name}", argv, self.stack, port, env=env, wrap=self._wrap(name))

    def tarantool(self, name: str) -> Process:
        argv, env = self.topology.tarantool(name, require_binary("tarantool"))
        port = self.topology.node(name).tarantool_port
        return Process(f"tarantool-{name}", argv, self.stack, port, env=env, wrap=self._wrap(name))

    def agent(self, name: str) -> Process:
        argv, env = self.topology.agent(name, sys.executable)
        port = self.topology.node(name).agent_port
        return Process(f"agent-{name}", argv, self.stack, port, env=env, wrap=self._wrap(name))

    def start(self, services: bool = True, gateway: bool = True) -> HaCluster:
        names = [n.name for n in self.topology.nodes]
        for name in names:
            self.topology.node_dir(name).mkdir(parents=True, exist_ok=True)
        try:
            for name in names:
                self.processes[f"etcd-{name}"] = self.etcd(name).start(wait=False)
            for name in names:
                wait_until(lambda n=name: self._port_open(self.topology.node(n).etcd_client_port), f"etcd {name}")
            # The bootstrapping node first: the others join it once its agent leads.
            first = names[0]
            self.processes[f"tarantool-{first}"] = self.tarantool(first).start()
            for name in names:
                self.processes[f"agent-{name}"] = self.agent(name).start()
            self.wait_for_leader(first, timeout=30)
            for name in names[1:]:
                self.processes[f"tarantool-{name}"] = self.tarantool(name).start()
            self.wait_for_replicas(timeout=60)
            if services:
                self.processes["auth_svc"] = auth_svc(self.stack).start()
                self.processes["kv_svc"] = kv_svc(self.stack).start()
                if gateway:
                    self.processes["envoy"] = envoy(self.stack).start()
        except BaseException as error:
            error.add_note(self.logs_tail())
            self.stop()
            raise
        return self

    def supervise(self, *names: str, pause: float = 1.0) -> None:
        """Starts the named processes again `pause` seconds after they exit (supervisord's
        restart), until the cluster stops. With no names: every Tarantool node."""
        self.supervised.update(names or (f"tarantool-{n.name}" for n in self.topology.nodes))
        if self._supervisor is None:
            self._supervisor = threading.Thread(target=self._supervise, args=(pause,), daemon=True)
            self._supervisor.start()

    def _supervise(self, pause: float) -> None:
        while not self._stopping.wait(0.1):
            for name in list(self.supervised):
                process = self.processes.get(name)
                if process is None or process.popen is None or process.popen.poll() is None:
                    continue
                if self._stopping.wait(pause):
                    return
                self.restarts.append((name, time.monotonic()))
                with contextlib.suppress(Exception):  # it may fail to start: tried again
                    process.start(wait=False)

    @staticmethod
    def _port_open(port: int) -> bool:
        import socket

        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.join()
        for process in reversed(list(self.processes.values())):
            with contextlib.suppress(Exception):
                process.stop(signal.SIGKILL)
        if self.cgroups is not None:
            self.cgroups.remove()

    def logs_tail(self, lines: int = 12) -> str:
        parts = []
        for process in self.processes.values():
            tail = process.log().splitlines()[-lines:]
            parts.append(f"--- {process.name}:\n" + "\n".join(tail))
        return "\n".join(parts)

    # -- state -----------------------------------------------------------------------

    def state(self, name: str) -> dict | None:
        """What node `name`'s agent reports: {name, leading, node: {...}} or None."""
        return _agent_state(self.topology.node(name).agent)

    def leader(self) -> str | None:
        """The node whose agent leads and whose Tarantool takes writes, if exactly one."""
        leaders = []
        for node in self.topology.nodes:
            state = self.state(node.name)
            if state and state.get("leading") and state.get("node") and not state["node"]["ro"]:
                leaders.append(node.name)
        return leaders[0] if len(leaders) == 1 else None

    def writable_nodes(self) -> list[str]:
        found = []
        for node in self.topology.nodes:
            state = self.state(node.name)
            if state and state.get("node") and not state["node"]["ro"]:
                found.append(node.name)
        return found

    def wait_for_leader(self, name: str | None = None, timeout: float = 20.0) -> str:
        def ready():
            leader = self.leader()
            return leader is not None and (name is None or leader == name)

        wait_until(ready, f"leader {name or ''}".strip(), timeout=timeout)
        return self.leader()

    def wait_for_replicas(self, timeout: float = 30.0) -> None:
        """Every node up, and every replica following the leader with its rows."""

        def ready():
            leader = self.leader()
            if leader is None:
                return False
            states = {n.name: self.state(n.name) for n in self.topology.nodes}
            if any(s is None or "node" not in s for s in states.values()):
                return False
            lead = states[leader]["node"]
            for name, state in states.items():
                node = state["node"]
                if name == leader:
                    continue
                if node["follows"] != [self.topology.node(leader).tarantool]:
                    return False
                if any(node["vclock"].get(k, 0) < v for k, v in lead["vclock"].items()):
                    return False
            return True

        wait_until(ready, "replicas following the leader", timeout=timeout)

    def console(self, name: str, expression: str, timeout: float = 5.0) -> str:
        node_stack = Stack.__new__(Stack)
        node_stack.data_dir = self.topology.node_dir(name)
        return Stack.console(node_stack, expression, timeout)

    def tkv_ha(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """The operator's command, as documented."""
        env = {**self.stack.env, **self.topology.operator_env()}
        return subprocess.run(
            [sys.executable, "-m", "tkv_ha", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
        )
