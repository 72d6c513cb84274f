"""Reads while a replica set has no writable node (docs/high-availability.md, "Reads without
a leader"): the services read from the last leader, read-only now, because with no leader
nothing newer can be written anywhere. Not once etcd names another leader that takes writes
and the service has not reached it yet: that one may hold newer writes, and newer token
revocations, so a read from the old leader could answer with what is no longer true.

Real parts: two Tarantool processes, one etcd member and the services' own TarantoolClient;
the leader key is written here as an agent would write it (no agents run).
"""

from __future__ import annotations

import subprocess
import uuid

import pytest

from tests.stack import Stack, eventually, free_port, require_binary, tarantool, wait_for_port
from tkv_common.errors import Unavailable
from tkv_common.etcd import Etcd
from tkv_common.ha_keys import Keys, Leader
from tkv_common.tarantool import Address, TarantoolClient, TarantoolSettings

KEYS = Keys("/tkv-test-fallback/")


@pytest.fixture
def etcd(tmp_path):
    client, peer = free_port(), free_port()
    process = subprocess.Popen(
        [
            require_binary("etcd"),
            "--name", "solo",
            "--data-dir", str(tmp_path / "etcd"),
            "--listen-client-urls", f"http://127.0.0.1:{client}",
            "--advertise-client-urls", f"http://127.0.0.1:{client}",
            "--listen-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-cluster", f"solo=http://127.0.0.1:{peer}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_port(client, process=process)
        yield f"127.0.0.1:{client}"
    finally:
        process.kill()
        process.wait()


@pytest.fixture
def nodes(tmp_path):
    """Two Tarantool nodes that know the same kv_svc password; the first one writable."""
    password = {"TKV_TARANTOOL_TKV_KV_PASSWORD": "fallback-" + uuid.uuid4().hex}
    stacks = [Stack(tmp_path / name, extra_env=password) for name in ("old", "new")]
    processes = [tarantool(stack).start() for stack in stacks]
    stacks[1].console("box.cfg({read_only = true})")
    yield stacks, password["TKV_TARANTOOL_TKV_KV_PASSWORD"]
    for process in processes:
        process.stop()


def leader(stack: Stack, name: str) -> bytes:
    return Leader(name, f"127.0.0.1:{stack.tarantool_port}", "127.0.0.1:0", writable=True, since=0.0).encode()


async def test_reads_go_to_the_last_leader_only_while_etcd_names_no_other(nodes, etcd):
    (old, new), password = nodes
    store = Etcd((etcd,))
    settings = TarantoolSettings(
        addresses=(Address("127.0.0.1", old.tarantool_port), Address("127.0.0.1", new.tarantool_port)),
        user="tkv_kv",
        password=password,
        call_timeout=2.0,
        connect_timeout=2.0,
        reconnect_interval=0.1,
        probe_interval=0.1,
        etcd=(etcd,),
        leader_key=KEYS.leader,
    )
    client = TarantoolClient(settings)
    try:
        await store.put(KEYS.leader, leader(old, "old"))
        client.start()
        await eventually(lambda: _true(client.is_connected), "the client on the old leader")

        # The old leader is fenced and etcd names none: reads still go to it.
        await store.delete(KEYS.leader)
        old.console("box.cfg({read_only = true})")
        await eventually(lambda: _true(not client.is_connected), "the client off the fenced leader")
        assert client.is_serving
        assert (await client.call("tkv.node_status", read=True))[1] is True  # read_only, and it answered
        with pytest.raises(Unavailable):
            await client.call("tkv.node_status")  # a write-path call: never to a read-only node

        # etcd now names a new writable leader that this client has not reached: no reads
        # from the old one any more, and health says so.
        await store.put(KEYS.leader, leader(new, "new"))
        await eventually(lambda: _true(not client.is_serving), "the fallback withdrawn")
        with pytest.raises(Unavailable):
            await client.call("tkv.node_status", read=True)
    finally:
        await client.close()
        await store.close()


async def _true(value: bool) -> bool:
    return value
