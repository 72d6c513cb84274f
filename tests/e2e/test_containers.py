"""docker-compose.yml and the Dockerfiles, checked without a Docker engine.

Compose is validated by Debian's docker-compose (`config -q`), the Dockerfiles by Docker's
own parser; then each image's file set is assembled locally the way its COPY lines
would, and run, to prove the image would hold everything it needs.
"""

import ipaddress
import shutil
import signal
import subprocess
import sys

import dockerfile
import pytest
import yaml

from tests.stack import ROOT, Stack, free_port, require_binary, wait_for_port

COMPOSE_ENV = {
    "TKV_TARANTOOL_AUTH_PASSWORD": "compose-test-a",
    "TKV_TARANTOOL_KV_PASSWORD": "compose-test-k",
    "PATH": "/usr/local/bin:/usr/bin:/bin",
}


def compose(*args: str, env=COMPOSE_ENV) -> subprocess.CompletedProcess:
    return subprocess.run(
        [require_binary("docker-compose"), "-f", "docker-compose.yml", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_compose_file_is_valid():
    result = compose("config", "-q")
    assert result.returncode == 0, result.stderr


def test_compose_refuses_to_start_without_passwords():
    result = compose("config", "-q", env={"PATH": COMPOSE_ENV["PATH"]})
    assert result.returncode != 0
    assert "run scripts/compose-env.sh" in result.stderr


def test_compose_topology_and_key_separation():
    config = yaml.safe_load(compose("config").stdout)
    services = config["services"]
    assert set(services) == {"tarantool", "keygen", "auth_svc", "kv_svc", "gateway-config", "envoy"}
    assert "ports" not in services["tarantool"]  # only reachable inside the compose network
    for name, port in (("auth_svc", 50051), ("kv_svc", 50052), ("envoy", 8080)):
        [published] = services[name]["ports"]
        if isinstance(published, str):  # docker-compose v1 keeps the short syntax
            host_ip, host_port, _ = published.split(":")
            published = {"host_ip": host_ip, "published": host_port}
        assert published["host_ip"] == "127.0.0.1" and int(published["published"]) == port
    for name in ("auth_svc", "kv_svc"):
        assert services[name]["depends_on"]["tarantool"]["condition"] == "service_healthy"
    mounts = {
        name: {v.split(":")[0] if isinstance(v, str) else v["source"] for v in services[name].get("volumes", [])}
        for name in services
    }
    assert mounts["kv_svc"] == {"public-keys"}, "kv_svc must never see the signing key"
    assert mounts["auth_svc"] == {"signing-key", "public-keys"}
    # auth_svc believes x-forwarded-for from the gateway's fixed address and nobody else's.
    gateway_ip = services["envoy"]["networks"]["default"]["ipv4_address"]
    assert services["auth_svc"]["environment"]["TKV_TRUSTED_PROXIES"] == gateway_ip
    subnet = config["networks"]["default"]["ipam"]["config"][0]["subnet"]
    assert ipaddress.ip_address(gateway_ip) in ipaddress.ip_network(subnet)


def copy_sources(path):
    commands = dockerfile.parse_file(str(path))
    return [c.value[:-1] for c in commands if c.cmd == "COPY"], commands


@pytest.mark.parametrize("path", ["Dockerfile", "tarantool/Dockerfile"])
def test_dockerfiles_parse_and_copy_only_existing_files(path):
    context = (ROOT / path).parent
    sources, commands = copy_sources(ROOT / path)
    assert commands[0].cmd == "FROM"
    for group in sources:
        for source in group:
            assert (context / source).exists(), f"{path}: COPY {source} does not exist"


def test_services_image_file_set_generates_code_and_imports(tmp_path):
    sources, _ = copy_sources(ROOT / "Dockerfile")
    for group in sources:
        for source in group:
            target = tmp_path / source
            if (ROOT / source).is_dir():
                shutil.copytree(ROOT / source, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(ROOT / source, target)
    subprocess.run([sys.executable, "scripts/gen_protos.py"], cwd=tmp_path, check=True, capture_output=True)
    probe = "import auth_svc.__main__, kv_svc.__main__, tkv_common.healthcheck, tkv_common.devsecrets"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr


def test_tarantool_image_file_set_starts(tmp_path):
    app = tmp_path / "opt" / "tkv"
    app.mkdir(parents=True)
    shutil.copy(ROOT / "tarantool" / "init.lua", app / "init.lua")
    shutil.copytree(ROOT / "tarantool" / "tkv", app / "tkv")
    stack = Stack(tmp_path / "data")
    port = free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "TKV_DATA_DIR": str(stack.data_dir),
        "TKV_TARANTOOL_LISTEN": f"127.0.0.1:{port}",
        "TKV_TARANTOOL_TKV_AUTH_PASSWORD": "a",
        "TKV_TARANTOOL_TKV_KV_PASSWORD": "k",
        "TKV_SECRETS_DIR": str(tmp_path / "no-secrets-here"),
    }
    process = subprocess.Popen(
        [require_binary("tarantool"), str(app / "init.lua")],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, process=process)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(10)
