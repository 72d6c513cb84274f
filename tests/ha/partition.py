"""Network partitions on loopback, made with nft: a node's processes are cut off from the
other nodes' by dropping the packets between their ports.

Every process of a node (its etcd member, Tarantool and agent) is started inside a cgroup
v2 of its own (`Cgroups.wrap`). nft's `socket cgroupv2` match tells which node sent a
packet, so a rule can drop what node A's processes send to node B's ports, and the
reverse, while the services and the test's clients (in no such cgroup) still reach
every node: the old master stays reachable by the services, as in a real partition where
the application servers sit on its side. Nothing leaves 127.0.0.1; the rules live in a
table of their own, removed when the test ends.

Needs root, nft, and a writable cgroup v2 hierarchy: a missing one is a failure.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path


def cgroup2_root() -> Path:
    """Where the cgroup v2 hierarchy is mounted (/sys/fs/cgroup, or /sys/fs/cgroup/unified
    on a hybrid system)."""
    with open("/proc/mounts") as mounts:
        for line in mounts:
            parts = line.split()
            if len(parts) > 2 and parts[2] == "cgroup2":
                return Path(parts[1])
    raise RuntimeError("no cgroup v2 hierarchy is mounted; the partition tests need one")


def nft(*commands: str) -> None:
    binary = shutil.which("nft")
    if binary is None:
        raise RuntimeError("nft is not installed; run `make test` (scripts/bootstrap.sh installs nftables)")
    script = "\n".join(commands) + "\n"
    result = subprocess.run([binary, "-f", "-"], input=script, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"nft failed: {result.stderr.strip()}\n{script}")


@dataclass
class Cgroups:
    """One cgroup per node, named <prefix>-<node>, directly under the v2 root."""

    prefix: str
    nodes: list[str]
    root: Path = field(default_factory=cgroup2_root)

    @classmethod
    def create(cls, prefix: str, nodes: list[str]) -> Cgroups:
        groups = cls(f"{prefix}-{uuid.uuid4().hex[:6]}", nodes)
        for node in nodes:
            groups.path(node).mkdir()
        return groups

    def path(self, node: str) -> Path:
        return self.root / f"{self.prefix}-{node}"

    def nft_path(self, node: str) -> str:
        """The cgroup as nft names it: relative to /sys/fs/cgroup."""
        return str(self.path(node).relative_to("/sys/fs/cgroup"))

    def wrap(self, node: str) -> list[str]:
        """A command prefix that starts the process inside the node's cgroup, so every
        socket it opens belongs to it (a socket keeps the cgroup it was opened in)."""
        procs = self.path(node) / "cgroup.procs"
        return ["sh", "-c", f'echo $$ > "{procs}" && exec "$@"', "in-cgroup"]

    def remove(self) -> None:
        for node in self.nodes:
            path = self.path(node)
            if path.exists():
                for pid in (path / "cgroup.procs").read_text().split():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(pid), 9)
                with contextlib.suppress(OSError):
                    path.rmdir()


class Partition:
    """Cuts `isolated` off from `others`, both ways on every connection between them:
    what either side's processes send to the other side's listening ports is dropped on
    the way out (the sending socket's cgroup), and what comes from the other side's
    listening ports is dropped on the way in (the receiving socket's cgroup), which
    covers the answers on connections the other side opened. `heal()` removes the rules."""

    def __init__(self, cgroups: Cgroups, isolated: str, ports: dict[str, list[int]]):
        self.cgroups, self.isolated, self.ports = cgroups, isolated, ports
        self.table = f"tkv_partition_{uuid.uuid4().hex[:8]}"
        self.active = False

    def _level(self, node: str) -> int:
        # The cgroup's depth in the v2 hierarchy: one below its root.
        return len(self.cgroups.path(node).relative_to(self.cgroups.root).parts)

    def cut(self) -> None:
        rules = [
            f"add table inet {self.table}",
            f"add chain inet {self.table} out {{ type filter hook output priority 0; policy accept; }}",
            f"add chain inet {self.table} in {{ type filter hook input priority 0; policy accept; }}",
        ]
        mine = ", ".join(str(p) for p in self.ports[self.isolated])
        for other, ports in self.ports.items():
            if other == self.isolated:
                continue
            theirs = ", ".join(str(p) for p in ports)
            rules.append(
                f"add rule inet {self.table} out socket cgroupv2 level {self._level(self.isolated)} "
                f'"{self.cgroups.nft_path(self.isolated)}" ip daddr 127.0.0.0/8 tcp dport {{ {theirs} }} drop'
            )
            rules.append(
                f"add rule inet {self.table} out socket cgroupv2 level {self._level(other)} "
                f'"{self.cgroups.nft_path(other)}" ip daddr 127.0.0.0/8 tcp dport {{ {mine} }} drop'
            )
        nft(*rules)
        self.active = True

    def heal(self) -> None:
        if self.active:
            nft(f"delete table inet {self.table}")
            self.active = False
