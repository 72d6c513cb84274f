"""`make run-ha`'s stack (scripts/run-ha.sh under supervisord) as a user runs it: the
banner, `tkv-ha status`, a write through the gateway, and Ctrl-C stopping everything."""

import json
import signal
import subprocess
import sys
import time
import uuid

import pytest

from tests.e2e.http_client import call
from tests.e2e.test_local_stack import RunScript, port_open
from tests.stack import ROOT, Stack
from tkv_ha.topology import Topology

pytestmark = pytest.mark.slow


class RunHaScript(RunScript):
    def start(self):
        env = {key: value for key, value in self.stack.env.items() if key != "TKV_WORKERS"}
        env["VENV"] = sys.prefix
        with open(self.log, "ab") as log:
            self.popen = subprocess.Popen(
                ["bash", "scripts/run-ha.sh"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip


def tkv_ha(stack: Stack, *args: str) -> subprocess.CompletedProcess:
    """The documented command, with nothing but the data dir set: its defaults are run-ha's."""
    env = {"PATH": stack.env["PATH"], "TKV_DATA_DIR": str(stack.data_dir)}
    return subprocess.run([f"{sys.prefix}/bin/tkv-ha", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=30)  # fmt: skip


@pytest.mark.log_errors_expected(r"duplicate connection with the same replica UUID", r"ER_UNKNOWN_REPLICA",
                                 r"ER_READONLY")  # fmt: skip
def test_run_ha_starts_a_replica_set_that_serves_and_stops_on_ctrl_c(tmp_path):
    stack = Stack(tmp_path / "var")
    topology = Topology.local(stack.data_dir)
    run = RunHaScript(stack)
    run.start()
    try:
        deadline = time.monotonic() + 90
        while True:
            status = tkv_ha(stack, "status", "-o", "json")
            report = json.loads(status.stdout) if status.returncode == 0 else None
            if report and all(node.get("rows_behind") == 0 for node in report["nodes"] if node["role"] == "replica") \
                    and [n["role"] for n in report["nodes"]].count("replica") == 2:  # fmt: skip
                break
            assert time.monotonic() < deadline, (status.stdout, status.stderr, run.text()[-3000:])
            time.sleep(0.5)
        assert report["leader"] == "n1" and report["maintenance"] is False
        banner = run.text()
        assert (
            f"Tarantool    {topology.tarantool_addresses}" in banner
            and f"etcd         {topology.etcd_endpoints}" in banner
        )
        gateway = f"127.0.0.1:{stack.gateway_port}"
        login = "ha" + uuid.uuid4().hex[:10]
        body = {"login": login, "password": "Secr3t!pass", "name": "Anna", "surname": "Smith"}
        deadline = time.monotonic() + 30
        while call(gateway, "POST", "/api/register/", body).status != 201:
            assert time.monotonic() < deadline, run.text()[-3000:]
            time.sleep(0.5)
        token = call(gateway, "POST", "/api/login/", {"login": login, "password": "Secr3t!pass"}).body["token"]
        assert call(gateway, "POST", "/api/write/", {"data": {login: 1}}, token=token).status == 201
        assert call(gateway, "POST", "/api/read/", {"keys": [login]}, token=token).body == {"data": {login: 1}}
    finally:
        code = run.stop(signal.SIGINT)
    assert code == 0, run.text()[-3000:]
    for node in topology.nodes:
        for port in (node.tarantool_port, node.agent_port, node.etcd_client_port):
            assert not port_open(port), f"{port} still open after Ctrl-C"
