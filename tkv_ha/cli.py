"""The `tkv-ha` command: the agent, cluster status, a planned switchover, maintenance mode.

Exit codes: 0 done; 1 the cluster is not in the state asked for (no leader, switchover
not finished in time); 2 usage or settings; 3 etcd unreachable.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
import time

import click

from tkv_common import logs
from tkv_common.etcd import Etcd, EtcdUnavailable
from tkv_common.ha_keys import Keys, Leader, etcd_endpoints
from tkv_common.settings import ConfigError, Env

from .decision import NodeState, ahead_of
from .http import get_json
from .settings import parse_peers
from .topology import Topology

EXIT_NOT_DONE, EXIT_USAGE, EXIT_ETCD = 1, 2, 3


def _fail(code: int, message: str) -> None:
    click.echo(f"tkv-ha: {message}", err=True)
    sys.exit(code)


def _cluster(env: Env) -> tuple[Etcd, Keys, dict[str, str]]:
    """etcd and the agents: from TKV_ETCD_ENDPOINTS and TKV_HA_PEERS, else `make run-ha`'s."""
    local = Topology.local(env.data_dir())
    try:
        endpoints = etcd_endpoints(env) or tuple(local.etcd_endpoints.split(","))
        peers = parse_peers(env.str("TKV_HA_PEERS") or local.peers, "TKV_HA_PEERS")
        return Etcd(endpoints), Keys.from_env(env), peers
    except ConfigError as error:
        _fail(EXIT_USAGE, str(error))
        raise  # unreachable


def _run(coroutine):
    try:
        return asyncio.run(coroutine)
    except EtcdUnavailable as error:
        _fail(EXIT_ETCD, str(error))


@click.group(help=__doc__)
def main() -> None:
    pass


@main.command(help="Run the failover agent beside one node (its settings: TKV_HA_*).")
def agent() -> None:
    from .agent import Agent
    from .settings import AgentSettings

    env = Env()
    logs.configure("tkv_ha", env.str("TKV_LOG_LEVEL"))
    try:
        settings = AgentSettings.from_env(env)
    except ConfigError as error:
        _fail(EXIT_USAGE, str(error))

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await Agent(settings).run(stop)

    asyncio.run(run())
    logging.shutdown()


async def cluster_status(etcd: Etcd, keys: Keys, peers: dict[str, str]) -> dict:
    """Everything `status` shows, as one dict (also the `-o json` output)."""
    everything = {kv.key: kv for kv in await etcd.get_prefix(keys.prefix)}
    leader_kv = everything.get(keys.leader)
    leader = Leader.decode(leader_kv.value) if leader_kv else None
    lease_left = await etcd.time_to_live(leader_kv.lease) if leader_kv else None
    names = sorted(peers)
    replies = await asyncio.gather(*(get_json(peers[name], "/state", timeout=1.0) for name in names))
    states = {
        name: NodeState.from_dict(reply["node"]) if reply and "node" in reply else None
        for name, reply in zip(names, replies, strict=True)
    }
    leader_state = states.get(leader.name) if leader else None
    nodes = []
    for name in names:
        state = states[name]
        row: dict = {"name": name, "agent": peers[name]}
        if state is None:
            row.update(role="unreachable")
        else:
            row.update(
                role="leader" if leader and name == leader.name else "replica",
                writable=not state.ro,
                vclock=state.vclock,
                follows=list(state.follows),
                lag_s=max((link.get("lag") or 0.0 for link in state.upstreams.values()), default=0.0),
            )
            if leader_state is not None and name != leader.name:
                # Rows behind the leader, per vclock component: how far from caught up.
                row["rows_behind"] = sum(
                    max(lsn - state.vclock.get(id_, 0), 0) for id_, lsn in leader_state.vclock.items()
                )
                row["ahead_of_leader"] = ahead_of(state, leader_state)
        nodes.append(row)
    switchover = everything.get(keys.switchover)
    return {
        "leader": leader.name if leader else None,
        "leader_writable": leader.writable if leader else False,
        "leader_since": leader.since if leader else None,
        "lease_ttl_left_s": lease_left,
        "maintenance": keys.maintenance in everything,
        "switchover_to": json.loads(switchover.value).get("to") if switchover else None,
        "replicaset": everything[keys.replicaset].value.decode() if keys.replicaset in everything else None,
        "nodes": nodes,
    }


@main.command(help="Leader, lease, maintenance, and each node's role and lag.")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text")
def status(output: str) -> None:
    etcd, keys, peers = _cluster(Env())

    async def run():
        try:
            return await cluster_status(etcd, keys, peers)
        finally:
            await etcd.close()

    report = _run(run())
    if output == "json":
        click.echo(json.dumps(report, indent=2, sort_keys=True))
    else:
        lease = f"{report['lease_ttl_left_s']} s left" if report["leader"] else "-"
        click.echo(f"leader       {report['leader'] or 'none'} (lease {lease})")
        click.echo(f"maintenance  {'on: automatic failover paused' if report['maintenance'] else 'off'}")
        if report["switchover_to"]:
            click.echo(f"switchover   to {report['switchover_to']} requested")
        click.echo(f"{'node':8} {'role':12} {'writable':9} {'lag_s':>8} {'rows_behind':>12}  vclock")
        for row in report["nodes"]:
            click.echo(
                f"{row['name']:8} {row['role']:12} {row.get('writable', '-')!s:9} "
                f"{row.get('lag_s', 0):>8.3f} {row.get('rows_behind', 0):>12}  {json.dumps(row.get('vclock', {}))}"
            )
    sys.exit(0 if report["leader"] else EXIT_NOT_DONE)


@main.command(help="Hand leadership to NODE: the leader goes read-only, waits until NODE has every row, then releases.")
@click.argument("node")
@click.option("--timeout", type=float, default=30.0, show_default=True, help="seconds to wait for NODE to lead")
def switchover(node: str, timeout: float) -> None:
    etcd, keys, peers = _cluster(Env())
    if node not in peers:
        _fail(EXIT_USAGE, f"no node {node!r} in TKV_HA_PEERS ({', '.join(sorted(peers))})")

    async def run() -> bool:
        try:
            await etcd.put(keys.switchover, json.dumps({"to": node}).encode())
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                kv, _ = await etcd.get(keys.leader)
                if kv is not None and (leader := Leader.decode(kv.value)).name == node and leader.writable:
                    return True
                await asyncio.sleep(0.1)
            # Not left behind: the other agents defer to a requested target while it stands.
            await etcd.delete(keys.switchover)
            return False
        finally:
            await etcd.close()

    if not _run(run()):
        _fail(EXIT_NOT_DONE, f"{node} did not take leadership within {timeout} s (see `tkv-ha status`)")
    click.echo(f"{node} leads")


@main.command(help="Pause (on) or resume (off) automatic failover.")
@click.argument("state", type=click.Choice(["on", "off"]))
def maintenance(state: str) -> None:
    etcd, keys, _ = _cluster(Env())

    async def run() -> None:
        try:
            if state == "on":
                await etcd.put(keys.maintenance, json.dumps({"since": time.time()}).encode())
            else:
                await etcd.delete(keys.maintenance)
        finally:
            await etcd.close()

    _run(run())
    click.echo("maintenance on: automatic failover paused" if state == "on" else "maintenance off: failover resumed")
