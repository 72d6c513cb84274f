"""tkv-client, the client's own distribution (issue 32): built from the tree, it depends on
none of the server's parts, installs into a clean virtualenv (offline, from the wheels the
bootstrap fetched), and runs the README's Python session and the `tkv` command there."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path

import pytest

from scripts import build_client
from tests.e2e.http_client import call
from tests.stack import ROOT

SERVER_ONLY = {"asynctnt", "uvloop", "libpass", "passlib", "argon2-cffi", "cryptography", "prometheus-client",
               "grpcio-tools", "grpcio-reflection", "grpcio-health-checking", "aetcd"}  # fmt: skip
WHEELHOUSE = Path(sys.executable).parent.parent / "client-wheels"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return build_client.build(tmp_path_factory.mktemp("client-dist"))


@pytest.fixture(scope="module")
def clean_venv(wheel, tmp_path_factory) -> Path:
    venv = tmp_path_factory.mktemp("client-venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    assert WHEELHOUSE.is_dir(), f"{WHEELHOUSE} is missing: run `make test` (scripts/bootstrap.sh fetches it)"
    install = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-index", "--find-links",
               str(WHEELHOUSE), str(wheel)]  # fmt: skip
    result = subprocess.run(install, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr
    return venv


def test_the_wheel_holds_the_client_and_the_public_protos_and_needs_no_server_part(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith("/METADATA"))).decode()
    assert "tkv_client/cli.py" in names and "tkv/kv/v2/kv_pb2.py" in names and "tkv_client/py.typed" in names
    assert not [n for n in names if n.startswith(("tkv/internal", "kv_svc", "auth_svc", "tkv_common", "tkv_ha"))]
    required = {re.match(r"[A-Za-z0-9_.-]+", line.split(": ", 1)[1]).group(0).lower()
                for line in metadata.splitlines() if line.startswith("Requires-Dist: ")}  # fmt: skip
    assert required == set(build_client.CLIENT_NEEDS)
    assert not required & SERVER_ONLY


def test_the_readme_python_session_runs_in_a_clean_virtualenv(clean_venv, processes):
    python = clean_venv / "bin" / "python"
    listed = subprocess.run([str(python), "-m", "pip", "list"], capture_output=True, text=True, check=True).stdout
    assert not {line.split()[0].lower() for line in listed.splitlines()[2:]} & SERVER_ONLY
    login = "py" + uuid.uuid4().hex[:10]
    account = {"login": login, "password": "Secr3t!pass", "name": "Ivan", "surname": "Petrov"}
    assert call(processes.gateway, "POST", "/api/register/", account).status == 201
    text = (ROOT / "README.md").read_text()
    session = re.search(r"<!-- readme-python-session:start -->\n```python\n(.*?)```\n", text, re.S)
    assert session, "README lost its readme-python-session block"
    script = session.group(1).replace("127.0.0.1:8080", processes.gateway).replace('login="ivan"', f'login="{login}"')
    # Outside the checkout, so that nothing of the tree can be imported instead.
    result = subprocess.run([str(python), "-c", script], cwd=clean_venv, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert re.fullmatch(r"\{'config/color': \d+\}", lines[0]) and lines[1].startswith("config/color blue "), lines
    help_text = subprocess.run([str(clean_venv / "bin" / "tkv"), "--help"], capture_output=True, text=True)
    assert help_text.returncode == 0 and "grant" in help_text.stdout
