"""Metrics scraped by a real Prometheus, summed over worker processes; request ids from the
gateway to the logs and errors; the alert rules checked and unit-tested by promtool.

The stack runs two workers per service, so every figure checked is a sum over processes."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.http_client import call
from tests.e2e.test_workers import children_of
from tests.stack import ROOT, NeverHappened, Stack, free_port, require_binary, start_all, stop_all, wait_until
from tkv_ha.agent import Metrics as HaMetrics

pytestmark = pytest.mark.slow

DEPLOY = ROOT / "deploy" / "prometheus"
PASSWORD = "Secr3t!pass"
READ = "/tkv.kv.v1.KeyValueService/Read"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = Stack(tmp_path_factory.mktemp("observability"), extra_env={"TKV_WORKERS": "2"})
    running = start_all(stack)
    yield stack, running
    stop_all(running)


@pytest.fixture(scope="module")
def token(stack):
    stack, _ = stack
    gateway = f"127.0.0.1:{stack.gateway_port}"
    login = f"obs{uuid.uuid4().hex[:10]}"
    account = {"login": login, "password": PASSWORD, "name": "Olga", "surname": "Petrova"}
    assert call(gateway, "POST", "/api/register/", account).status == 201
    return call(gateway, "POST", "/api/login/", {"login": login, "password": PASSWORD}).body["token"]


def scrape(port: int) -> dict[tuple, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def handled(samples: dict, code: str, method: str = "Read", service: str = "tkv.kv.v1.KeyValueService") -> float:
    key = (
        "grpc_server_handled_total",
        (("grpc_code", code), ("grpc_method", method), ("grpc_service", service), ("grpc_type", "unary")),
    )
    return samples.get(key, 0.0)


def read_absent(stack: Stack, token: str, count: int) -> list[str]:
    """`count` v1 Reads of absent keys through the gateway; their request ids."""
    ids = []
    for _ in range(count):
        reply = call(f"127.0.0.1:{stack.gateway_port}", "POST", "/api/read/", {"keys": ["absent"]}, token=token)
        assert reply.status == 400, reply.raw
        ids.append(reply.headers["x-request-id"])
    return ids


def log_lines(stack: Stack, name: str) -> list[dict]:
    text = (stack.data_dir / f"{name}.log").read_text(errors="replace")
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_metrics_are_the_sum_over_workers_and_a_restarted_worker_neither_loses_nor_double_counts(stack, token):
    stack, running = stack
    # Every method's series exist at 0 from the start, for every code: a series that first
    # appeared with a value would show no increase to rate() and the alerts.
    unavailable_watch = (
        "grpc_server_handled_total",
        (("grpc_code", "Unavailable"), ("grpc_method", "Watch"), ("grpc_service", "tkv.kv.v2.KeyValueService"),
         ("grpc_type", "server_stream")),
    )  # fmt: skip
    wait_until(lambda: unavailable_watch in scrape(stack.kv_metrics_port), "the workers' first snapshots")
    samples = scrape(stack.kv_metrics_port)
    assert samples[unavailable_watch] == 0
    before = handled(samples, "NotFound")
    ids = read_absent(stack, token, 40)
    # Both workers answered some of them (Envoy balances calls over the workers' sockets).
    wait_until(lambda: sum(line.get("request_id") in ids for line in log_lines(stack, "kv_svc")) == 40, "access log")
    pids = {line["pid"] for line in log_lines(stack, "kv_svc") if line.get("request_id") in ids}
    assert len(pids) == 2, pids
    wait_until(lambda: handled(scrape(stack.kv_metrics_port), "NotFound") == before + 40, "40 NotFound counted")
    samples = scrape(stack.kv_metrics_port)
    assert samples[("grpc_server_handling_seconds_count", (("grpc_method", "Read"),
                    ("grpc_service", "tkv.kv.v1.KeyValueService"), ("grpc_type", "unary")))] >= 40  # fmt: skip
    assert samples[("tkv_rpc_errors_total", (("grpc_method", "Read"), ("grpc_service", "tkv.kv.v1.KeyValueService"),
                    ("reason", "KEYS_NOT_FOUND")))] >= 40  # fmt: skip
    assert samples[("tkv_tarantool_call_seconds_count", (("function", "tkv.kv_read"),))] >= 40
    assert samples[("tkv_tarantool_connected", ())] == 1
    # The store's figures are polled every 5 s.
    wait_until(lambda: scrape(stack.kv_metrics_port)[("tkv_storage_users", ())] >= 1, "the new user counted")
    assert samples[("tkv_storage_memory_limit_bytes", ())] == 128 * 1024 * 1024
    assert samples[("tkv_storage_high_water_ratio", ())] == 0.9  # the default 90 %
    assert 0 < samples[("tkv_storage_memory_used_bytes", ())] < samples[("tkv_storage_memory_limit_bytes", ())]
    assert samples[("tkv_token_verifications_total", (("result", "cache_hit"),))] >= 1

    # A worker killed outright: what it published stays counted, and its successor starts
    # from zero, so the sum is unchanged. The 40 are in the published snapshots already:
    # the supervisor's sum above is made of nothing else.
    victim = children_of(running["kv_svc"].popen.pid)[0]
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: victim not in children_of(running["kv_svc"].popen.pid), "the worker gone")
    wait_until(lambda: len(children_of(running["kv_svc"].popen.pid)) == 2, "its successor started", timeout=30)
    wait_until(lambda: running["kv_svc"].log().count('"msg": "storage connected"') >= 3, "the successor connected")
    assert handled(scrape(stack.kv_metrics_port), "NotFound") == before + 40
    assert handled(scrape(stack.kv_metrics_port), "NotFound") == before + 40
    read_absent(stack, token, 10)
    wait_until(lambda: handled(scrape(stack.kv_metrics_port), "NotFound") == before + 50, "50 NotFound counted")


def test_auth_metrics_count_logins_by_outcome_and_the_password_hashing_queue(stack):
    stack, _ = stack
    gateway = f"127.0.0.1:{stack.gateway_port}"

    def logins(outcome: str) -> float:
        return scrape(stack.auth_metrics_port).get(("tkv_auth_logins_total", (("outcome", outcome),)), 0.0)

    ok, wrong = logins("OK"), logins("INVALID_CREDENTIALS")
    assert call(gateway, "POST", "/api/login/", {"login": "nobody42", "password": "Wr0ng!pass"}).status == 404
    wait_until(lambda: logins("INVALID_CREDENTIALS") == wrong + 1, "a failed login counted")
    assert logins("OK") == ok
    samples = scrape(stack.auth_metrics_port)
    assert samples[("tkv_auth_password_hashes_pending", ())] == 0
    assert samples[("tkv_auth_password_hash_seconds_count", ())] >= 1


def test_a_request_id_leads_from_the_response_to_the_log_lines_and_the_error(stack, token):
    stack, _ = stack
    gateway = f"127.0.0.1:{stack.gateway_port}"
    reply = call(gateway, "GET", "/v2/namespaces/me/pairs/absent-key", token=token)
    assert reply.status == 404, reply.raw
    request_id = reply.headers["x-request-id"]
    info = next(d for d in reply.body["details"] if d["@type"].endswith("google.rpc.ErrorInfo"))
    assert info.get("metadata", {}).get("request_id") == request_id, info
    wait_until(lambda: any(line.get("request_id") == request_id for line in log_lines(stack, "kv_svc")), "logged")
    (line,) = [line for line in log_lines(stack, "kv_svc") if line.get("request_id") == request_id]
    assert (line["method"], line["code"]) == ("/tkv.kv.v2.KeyValueService/GetPair", "NOT_FOUND")
    # And the gateway's access-log line of the same request (Envoy writes it within a second or so).
    wait_until(lambda: any(f'"request_id":"{request_id}"' in x.replace(" ", "") for x in running_log(stack, "envoy")),
               "the gateway's line")  # fmt: skip

    # A direct gRPC caller is told its call's id with an error (ErrorInfo and a trailer),
    # and keeps the id it sends itself.
    result = subprocess.run(
        [require_binary("grpcurl"), "-plaintext", "-v", "-format-error", "-H", f"authorization: Bearer {token}",
         "-d", '{"keys": ["absent"]}', f"127.0.0.1:{stack.kv_port}", READ.lstrip("/")],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    trailer = next(line for line in result.stdout.splitlines() if line.startswith("x-request-id:"))
    made = trailer.split(":", 1)[1].strip()
    assert json.loads(result.stderr)["details"][0]["metadata"]["request_id"] == made
    own = f"my-report-{uuid.uuid4().hex[:8]}"
    subprocess.run(
        [require_binary("grpcurl"), "-plaintext", "-H", f"authorization: Bearer {token}", "-H", f"x-request-id: {own}",
         "-d", '{"keys": ["absent"]}', f"127.0.0.1:{stack.kv_port}", READ.lstrip("/")],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    wait_until(lambda: any(line.get("request_id") == own for line in log_lines(stack, "kv_svc")), "the own id logged")


def running_log(stack: Stack, name: str) -> list[str]:
    return (stack.data_dir / f"{name}.log").read_text(errors="replace").splitlines()


# A real Prometheus -------------------------------------------------------------------------


def prometheus_config(stack: Stack, directory: Path) -> Path:
    """deploy/prometheus/prometheus.yml with this stack's ports and a 1 s scrape interval."""
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(DEPLOY / name) for name in config["rule_files"]]
    ports = {"tkv_auth": stack.auth_metrics_port, "tkv_kv": stack.kv_metrics_port, "envoy": stack.admin_port}
    # This stack is `make run`'s: the failover agents' job (make run-ha) has no target here.
    config["scrape_configs"] = [job for job in config["scrape_configs"] if job["job_name"] in ports]
    for job in config["scrape_configs"]:
        job["static_configs"] = [{"targets": [f"127.0.0.1:{ports[job['job_name']]}"]}]
    path = directory / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def query(port: int, expression: str) -> list[dict]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expression})
    with urllib.request.urlopen(url, timeout=5) as response:
        answer = json.load(response)
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def value(port: int, expression: str) -> float | None:
    result = query(port, expression)
    return float(result[0]["value"][1]) if result else None


@pytest.fixture(scope="module")
def prometheus(stack, tmp_path_factory):
    stack, _ = stack
    directory = tmp_path_factory.mktemp("prometheus")
    port = free_port()
    log = open(directory / "prometheus.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [
            require_binary("prometheus"),
            f"--config.file={prometheus_config(stack, directory)}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    try:
        wait_until(ready, "prometheus ready", timeout=30)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()


def test_a_real_prometheus_scrapes_both_services_and_envoy_and_sees_the_traffic(stack, token, prometheus, report):
    stack, _ = stack
    for job in ("tkv_auth", "tkv_kv", "envoy"):
        wait_until(lambda job=job: value(prometheus, f'up{{job="{job}"}}') == 1, f"{job} scraped", timeout=20)
    not_found = 'sum(grpc_server_handled_total{job="tkv_kv",grpc_code="NotFound",grpc_method="Read"})'
    wait_until(lambda: value(prometheus, not_found) is not None, "the NotFound series scraped", timeout=20)
    start = value(prometheus, not_found)
    read_absent(stack, token, 25)
    wait_until(lambda: value(prometheus, not_found) == start + 25, "25 more NotFound in Prometheus", timeout=20)
    rate = 'sum(rate(grpc_server_handled_total{job="tkv_kv",grpc_code="NotFound"}[1m]))'
    assert value(prometheus, rate) > 0
    # The store's figures, and the gateway's own metrics for the same traffic.
    users, connected = 'tkv_storage_users{job="tkv_kv"}', 'tkv_tarantool_connected{job="tkv_kv"}'
    gateway = 'sum(envoy_cluster_upstream_rq_total{envoy_cluster_name="kv_svc"})'
    assert value(prometheus, users) >= 1
    assert value(prometheus, connected) == 1
    assert value(prometheus, gateway) > 0
    report({expression: value(prometheus, expression) for expression in (not_found, rate, users, connected, gateway)})
    # The alert rules are loaded and evaluate (none fires on a healthy stack).
    with urllib.request.urlopen(f"http://127.0.0.1:{prometheus}/api/v1/rules", timeout=5) as response:
        groups = json.load(response)["data"]["groups"]
    rules = {rule["name"]: rule for group in groups for rule in group["rules"]}
    assert {"TkvHighErrorRatio", "TkvStorageAlmostFull", "TkvTarantoolUnreachable"} <= set(rules)
    wait_until(lambda: all(rule.get("health") == "ok" for rule in rules_now(prometheus)), "rules evaluated")
    assert [rule["name"] for rule in rules_now(prometheus) if rule.get("state") == "firing"] == []


def rules_now(port: int) -> list[dict]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/rules", timeout=5) as response:
        return [rule for group in json.load(response)["data"]["groups"] for rule in group["rules"]]


def test_the_prometheus_config_and_alert_rules_pass_promtool():
    promtool = require_binary("promtool")
    for command in (
        ["check", "config", str(DEPLOY / "prometheus.yml")],
        ["check", "rules", str(DEPLOY / "alerts.yml")],
        ["test", "rules", str(DEPLOY / "alerts_test.yml")],
    ):
        result = subprocess.run([promtool, *command], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "SUCCESS" in result.stdout + result.stderr


def documented_metrics() -> set[str]:
    """The metric names in the first column of docs/operations.md's metrics table."""
    names = set()
    for line in (ROOT / "docs" / "operations.md").read_text().splitlines():
        if line.startswith("| `") and ("tkv_" in line or "grpc_server_" in line):
            first_column = line.split("|")[1]
            names |= set(re.findall(r"`((?:tkv|grpc_server)_[a-z_]+)", first_column))
    return names


def test_every_metric_the_operations_guide_names_is_exposed(stack, token):
    """docs/operations.md promises these names to whoever writes dashboards and alerts."""
    stack, _ = stack
    read_absent(stack, token, 1)  # one call: every family below exists from start-up anyway
    documented = documented_metrics()
    assert len(documented) >= 30, documented  # the table was read
    missing: set[str] = set()

    def all_exposed() -> bool:
        # With TKV_WORKERS=2 a service's /metrics merges what each worker last published:
        # right after start-up a worker may not have published yet (seen when this test
        # ran first in its module).
        nonlocal missing
        exposed = set()
        texts = [urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
                 for port in (stack.auth_metrics_port, stack.kv_metrics_port)]  # fmt: skip
        texts.append(generate_latest(HaMetrics("n1").registry).decode())
        for text in texts:
            for family in text_string_to_metric_families(text):
                # A family with no series yet (a labelled counter before its first event)
                # still declares itself; a counter's family name drops its _total.
                exposed |= {family.name, family.name + "_total", *(sample.name for sample in family.samples)}
        missing = documented - exposed
        return not missing

    with contextlib.suppress(NeverHappened):  # the assertion below says what is missing
        wait_until(all_exposed, "every documented metric", timeout=10)
    assert missing == set(), f"documented in docs/operations.md, exposed by no process: {sorted(missing)}"
