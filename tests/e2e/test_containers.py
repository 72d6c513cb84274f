"""docker-compose.yml and the Dockerfiles, checked without a Docker engine.

Compose is validated by Debian's docker-compose (`config -q`), the Dockerfiles by Docker's
own parser; then each image's file set is assembled locally the way its COPY lines
would, and run, to prove the image would hold everything it needs.
"""

import ipaddress
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import dockerfile
import pytest
import yaml

from tests.stack import ROOT, Stack, free_port, require_binary, wait_for_port
from tkv_ha.settings import parse_peers
from tkv_ha.topology import Topology

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
    # COMPOSE_ENV has no replication password: the default stack never needs one, even
    # though compose interpolates the `ha` profile's services too.
    result = compose("config", "-q")
    assert result.returncode == 0, result.stderr


def test_compose_refuses_to_start_without_passwords():
    result = compose("config", "-q", env={"PATH": COMPOSE_ENV["PATH"]})
    assert result.returncode != 0
    assert "run scripts/compose-env.sh" in result.stderr


def test_compose_topology_and_key_separation():
    config = yaml.safe_load(compose("config").stdout)
    # What `docker compose up` starts: the services of no profile (docker-compose v1's
    # `config` lists the others too).
    services = {name: service for name, service in config["services"].items() if not service.get("profiles")}
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


# ---- The `ha` profile: `make run-ha`'s topology (tkv_ha/topology.py) in containers. ----

HA_ENV = {**COMPOSE_ENV, "TKV_TARANTOOL_REPLICATOR_PASSWORD": "compose-test-r"}
ETCD_IMAGES = ("gcr.io/etcd-development/etcd", "quay.io/coreos/etcd")
# etcd flags whose values name hosts, ports or paths: those differ between one host and a
# compose network, and are checked for what they must be instead of compared.
ETCD_PLACE_FLAGS = {
    "data-dir",
    "listen-client-urls",
    "advertise-client-urls",
    "listen-peer-urls",
    "initial-advertise-peer-urls",
    "initial-cluster",
}


def env_of(service: dict) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {key: "" if value is None else str(value) for key, value in environment.items()}


def mounts_of(service: dict) -> dict[str, str]:
    """Volume name -> where the service mounts it."""
    mounts = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            source, target = volume["source"], volume["target"]
        mounts[source] = target
    return mounts


def host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


def etcd_flags(argv: list[str]) -> dict[str, str]:
    """topology.py's etcd argv as {flag: value}; a flag without a value is "true"."""
    flags, i = {}, 1
    while i < len(argv):
        flag = argv[i].removeprefix("--")
        if i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            flags[flag], i = argv[i + 1], i + 2
        else:
            flags[flag], i = "true", i + 1
    return flags


@pytest.fixture(scope="module")
def ha() -> dict:
    result = compose("--profile", "ha", "config", env=HA_ENV)
    assert result.returncode == 0, result.stderr
    everything = yaml.safe_load(result.stdout)["services"]
    services = {name: s for name, s in everything.items() if "ha" in (s.get("profiles") or [])}

    def role(test) -> dict:
        return {name: s for name, s in services.items() if test(s)}

    return {
        "all": everything,
        "services": services,
        "etcd": role(lambda s: s.get("image", "").rpartition(":")[0] in ETCD_IMAGES),
        "nodes": role(lambda s: str((s.get("build") or {}).get("context", "")).endswith("/tarantool")),
        "agents": role(lambda s: s.get("command") == ["python", "-m", "tkv_ha", "agent"]),
        "auth_svc": role(lambda s: s.get("command") == everything["auth_svc"]["command"]),
        "kv_svc": role(lambda s: s.get("command") == everything["kv_svc"]["command"]),
        "envoy": role(lambda s: s.get("image") == everything["envoy"]["image"]),
    }


def test_compose_ha_profile_is_valid_and_commits_no_secret():
    result = compose("--profile", "ha", "config", "-q", env=HA_ENV)
    assert result.returncode == 0, result.stderr
    # Every password comes from .env (scripts/compose-env.sh), as in the default stack.
    raw = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for name, service in raw["services"].items():
        for key, value in env_of(service).items():
            if key.endswith("PASSWORD"):
                assert re.fullmatch(r"\$\{TKV_\w+:[?-][^}]*\}", value), f"{name}: {key} is not from .env"


def test_compose_ha_etcd_members_match_topology(ha):
    topology = Topology.local(Path("/unused"))
    assert len(ha["etcd"]) == 3
    members = {}
    for name, service in ha["etcd"].items():
        tag = service["image"].rpartition(":")[2]
        assert re.fullmatch(r"v3\.[45]\.\d+", tag), f"{name}: etcd pinned to a 3.4.x or 3.5.x tag, not {tag}"
        assert service["healthcheck"]["test"], f"{name} has no healthcheck"
        env = env_of(service)
        members[env["ETCD_NAME"]] = name, env
    assert sorted(members) == [node.name for node in topology.nodes]
    peer_urls = {member: env["ETCD_INITIAL_ADVERTISE_PEER_URLS"] for member, (_, env) in members.items()}
    for member, (name, env) in members.items():
        flags = etcd_flags(topology.etcd(member)[0])
        # topology.py's flags exactly, as the ETCD_* variables etcd reads each flag from.
        variables = {"ETCD_" + flag.upper().replace("-", "_"): flag for flag in flags}
        assert set(env) == set(variables), f"{name}: not the flags of tkv_ha/topology.py"
        for variable, flag in variables.items():
            if flag not in ETCD_PLACE_FLAGS:
                assert env[variable] == flags[flag], f"{name}: {variable}={env[variable]}, topology.py: {flags[flag]}"
        # Listening on the compose network; advertised under its own service name.
        for kind in ("CLIENT", "PEER"):
            listen = env[f"ETCD_LISTEN_{kind}_URLS"]
            advertised = env["ETCD_ADVERTISE_CLIENT_URLS" if kind == "CLIENT" else "ETCD_INITIAL_ADVERTISE_PEER_URLS"]
            assert advertised.startswith(f"http://{name}:")
            assert listen == f"http://0.0.0.0:{advertised.rpartition(':')[2]}"
        assert dict(item.split("=", 1) for item in env["ETCD_INITIAL_CLUSTER"].split(",")) == peer_urls
        assert env["ETCD_DATA_DIR"].startswith(tuple(mounts_of(ha["services"][name]).values()))


def test_compose_ha_nodes_and_agents_match_topology(ha):
    topology = Topology.local(Path("/unused"))
    nodes, agents, everything = ha["nodes"], ha["agents"], ha["all"]
    assert len(nodes) == 3 and len(agents) == 3
    etcd_endpoints = {env_of(s)["ETCD_ADVERTISE_CLIENT_URLS"].removeprefix("http://") for s in ha["etcd"].values()}
    by_member = {env_of(s)["TKV_HA_NAME"]: (name, env_of(s)) for name, s in agents.items()}
    assert sorted(by_member) == [node.name for node in topology.nodes]
    node_of = {member: env["TKV_TARANTOOL_LISTEN"] for member, (_, env) in by_member.items()}
    assert sorted(host_port(address)[0] for address in node_of.values()) == sorted(nodes), "one agent per node"

    for member, (name, env) in by_member.items():
        expected = topology.agent(member)[1]
        assert set(env) >= set(expected), f"{name} lacks {set(expected) - set(env)}"
        for key in ("TKV_HA_TTL_SECONDS", "TKV_HA_FENCE_MARGIN_SECONDS", "TKV_HA_ETCD_PREFIX"):
            assert env[key] == expected[key], key
        peers = parse_peers(env["TKV_HA_PEERS"], "TKV_HA_PEERS")
        assert peers == {m: agent_env["TKV_HA_AGENT_LISTEN"] for m, (_, agent_env) in by_member.items()}
        # Its listen address is also what the leader key tells the replicas: a name they
        # reach it by (its service's), never 0.0.0.0.
        assert host_port(env["TKV_HA_AGENT_LISTEN"])[0] == name
        assert set(env["TKV_ETCD_ENDPOINTS"].split(",")) == etcd_endpoints
        assert {dep for dep, c in agents[name]["depends_on"].items() if c["condition"] == "service_healthy"} >= set(
            ha["etcd"]
        )
        assert "user" not in agents[name], "agents run as the services image's own user"

    uid = re.search(r"useradd [^&]*--uid (\d+)", (ROOT / "Dockerfile").read_text()).group(1)
    runs = " ".join(c.value[0] for c in dockerfile.parse_file(str(ROOT / "tarantool" / "Dockerfile")) if c.cmd == "RUN")
    for member, address in node_of.items():
        name = host_port(address)[0]
        node, env = nodes[name], env_of(nodes[name])
        expected = topology.tarantool(member)[1]
        assert set(env) >= set(expected), f"{name} lacks {set(expected) - set(env)}"
        assert env["TKV_HA"] == "true" and env["TKV_TARANTOOL_SYNC_QUORUM"] == "2"
        for key in ("TKV_HA", "TKV_TARANTOOL_SYNC_QUORUM", "TKV_TARANTOOL_SERVE_REPLICAS"):
            assert env[key] == expected[key], key
        # Only the first node bootstraps the replica set.
        assert env.get("TKV_HA_BOOTSTRAP") == expected.get("TKV_HA_BOOTSTRAP"), name
        # It replicates from the other two, named as their agents name them in etcd.
        others = sorted(a for m, a in node_of.items() if m != member)
        assert sorted(env["TKV_TARANTOOL_REPLICATION"].split(",")) == others
        assert host_port(env["TKV_TARANTOOL_LISTEN"])[1] == host_port(address)[1]

        agent_name, agent_env = by_member[member]
        mounts = mounts_of(node)
        # The console socket: on a volume only the node and its own agent mount.
        socket = Path(env["TKV_TARANTOOL_CONSOLE_SOCKET"])
        assert agent_env["TKV_TARANTOOL_CONSOLE_SOCKET"] == str(socket)
        [console] = [volume for volume, target in mounts.items() if Path(target) == socket.parent]
        assert mounts_of(agents[agent_name]).get(console) == str(socket.parent)
        assert sorted(n for n, s in everything.items() if console in mounts_of(s)) == sorted([name, agent_name])
        # The data: on a volume of its own, in a directory below its root (a rebuild
        # renames the work dir aside, which a mount point cannot be).
        work_dir = Path(env["TKV_TARANTOOL_WORK_DIR"])
        [data] = [volume for volume, target in mounts.items() if Path(target) in work_dir.parents]
        assert [n for n, s in everything.items() if data in mounts_of(s)] == [name]
        # The agent's uid, which owns (in the image) every directory the node mounts.
        assert str(node["user"]).split(":")[0] == uid
        for target in mounts.values():
            assert re.search(rf"chown {uid}\S* (\S+ )*{re.escape(target)}(\s|$)", runs), f"{target} is not uid {uid}'s"


def test_compose_ha_services_call_the_three_nodes(ha):
    topology = Topology.local(Path("/unused"))
    everything = ha["all"]
    agent_env = [env_of(s) for s in ha["agents"].values()]
    node_addresses = sorted(env["TKV_TARANTOOL_LISTEN"] for env in agent_env)
    for service in ("auth_svc", "kv_svc"):
        [(name, svc)] = ha[service].items()
        env, default = env_of(svc), env_of(everything[service])
        assert set(env) >= set(topology.services_env()), f"{name} lacks {set(topology.services_env()) - set(env)}"
        assert sorted(env["TKV_TARANTOOL_ADDR"].split(",")) == node_addresses
        for key in ("TKV_ETCD_ENDPOINTS", "TKV_HA_ETCD_PREFIX"):
            assert env[key] == agent_env[0][key], key
        # Otherwise as the default stack's service.
        for key, value in default.items():
            if key not in ("TKV_TARANTOOL_ADDR", "TKV_TRUSTED_PROXIES"):
                assert env[key] == value, f"{name}: {key}"
        assert set(ha["agents"]) <= set(svc["depends_on"]), "no leader without the agents"
    [envoy] = ha["envoy"].values()
    [(auth_name, auth)] = ha["auth_svc"].items()
    assert env_of(auth)["TKV_TRUSTED_PROXIES"] == envoy["networks"]["default"]["ipv4_address"]
    [gateway_volume] = mounts_of(envoy)
    [renderer] = [s for s in ha["services"].values() if gateway_volume in mounts_of(s) and s is not envoy]
    [(kv_name, _)] = ha["kv_svc"].items()
    assert host_port(env_of(renderer)["TKV_AUTH_UPSTREAM"])[0] == auth_name
    assert host_port(env_of(renderer)["TKV_KV_UPSTREAM"])[0] == kv_name
    # Both stacks can run at once: no host port and no fixed address is taken twice.
    published = []
    for service in everything.values():
        for port in service.get("ports", []):
            published.append(port.split(":")[1] if isinstance(port, str) else str(port["published"]))
    assert len(published) == len(set(published)), published
    fixed = [s["networks"]["default"]["ipv4_address"] for s in everything.values() if "networks" in s]
    assert len(fixed) == len(set(fixed)), fixed


def quoted(name: str, text: str) -> bool:
    return re.search(rf"""["']{re.escape(name)}["']""", text) is not None


def sources(*patterns: str) -> str:
    return "\n".join(path.read_text() for pattern in patterns for path in sorted(ROOT.glob(pattern)))


def test_compose_ha_variables_are_the_ones_the_code_reads(ha):
    """Each name against the code that reads it (not topology.py, which only sets them):
    a variable renamed there and not here fails this test."""
    config_lua = sources("tarantool/tkv/config.lua")
    # A default naming another setting ('$TKV_DATA_DIR/secrets', tarantool/tkv/defaults.lua)
    # makes config.lua read that one too.
    named_in_defaults = set(re.findall(r"\$(TKV_\w+)", sources("tarantool/tkv/defaults.lua")))
    config_lua += "".join(f" '{name}'" for name in sorted(named_in_defaults))
    schema_lua = sources("tarantool/tkv/schema.lua")
    agent_code = sources("tkv_ha/settings.py", "tkv_common/*.py")
    service_code = sources("tkv_common/*.py")
    users = re.findall(r"'(\w+)'", re.search(r"SERVICE_USERS = \{([^}]*)\}", schema_lua).group(1))
    users.append(re.search(r"REPLICATION_USER = '(\w+)'", schema_lua).group(1))
    # config.lua reads TKV_TARANTOOL_<USER>_PASSWORD, the name built from the user's.
    assert re.search(r"'TKV_TARANTOOL_'\s*\.\.\s*\w+:upper\(\)\s*\.\.\s*'_PASSWORD'", config_lua)
    passwords = {f"TKV_TARANTOOL_{user.upper()}_PASSWORD" for user in users}
    for name, node in ha["nodes"].items():
        env = env_of(node)
        assert passwords <= set(env), f"{name}: a password for each of {users}"
        assert env["TKV_TARANTOOL_TKV_REPLICATOR_PASSWORD"] == HA_ENV["TKV_TARANTOOL_REPLICATOR_PASSWORD"]
        unread = [key for key in env if key not in passwords and not quoted(key, config_lua)]
        assert not unread, f"{name}: tarantool/tkv/config.lua reads no {unread}"
    for name, agent in ha["agents"].items():
        unread = [key for key in env_of(agent) if not quoted(key, agent_code)]
        assert not unread, f"{name}: tkv_ha/settings.py and tkv_common read no {unread}"
    for service in ("auth_svc", "kv_svc"):
        [(name, svc)] = ha[service].items()
        added = set(env_of(svc)) - set(env_of(ha["all"][service])) | {"TKV_TARANTOOL_ADDR"}
        unread = sorted(key for key in added if not quoted(key, service_code))
        assert not unread, f"{name}: tkv_common reads no {unread}"


def copy_sources(path):
    """The build context's files each COPY takes (a COPY --from takes another stage's)."""
    commands = dockerfile.parse_file(str(path))
    from_context = [c for c in commands if c.cmd == "COPY" and not any(f.startswith("--from") for f in c.flags)]
    return [c.value[:-1] for c in from_context], commands


@pytest.mark.parametrize("path", ["Dockerfile", "tarantool/Dockerfile"])
def test_dockerfiles_parse_and_copy_only_existing_files(path):
    context = (ROOT / path).parent
    sources, commands = copy_sources(ROOT / path)
    # Only ARGs (the base image's) may come before FROM.
    assert next(c for c in commands if c.cmd != "ARG").cmd == "FROM"
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
    # As the Dockerfile runs it (the image ships the committed OpenAPI description).
    subprocess.run(
        [sys.executable, "scripts/gen_protos.py", "--no-openapi"], cwd=tmp_path, check=True, capture_output=True
    )
    modules = ["auth_svc.__main__", "kv_svc.__main__", "tkv_common.healthcheck", "tkv_common.devsecrets"]
    modules += ["tkv_ha.__main__", "tkv_ha.agent"]  # the `ha` profile's failover agents
    probe = f"import importlib; [print(importlib.import_module(m).__file__) for m in {modules!r}]"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    # Each from the image's file set: the venv's editable install of the checkout would
    # otherwise supply a package the image lacks.
    for module, file in zip(modules, result.stdout.split(), strict=True):
        assert Path(file).resolve().is_relative_to(tmp_path.resolve()), f"{module} is not in the image"


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
