"""Builds `tkv-client`, the client's own distribution: tkv_client/ (the client and the `tkv`
command line) with the generated protobuf code of the public APIs, depending only on what
a client needs.

    python scripts/build_client.py OUT_DIR        the wheel, into OUT_DIR; prints its path
    python scripts/build_client.py --requirements  the dependencies, one per line

The dependencies' version ranges are the project's own (pyproject.toml), so the client and
the services never disagree on them. Run `make gen` first: the protobuf code is generated.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What the client imports: gRPC and protobuf, google.rpc and google.api (the generated code
# imports the HTTP annotations), pyjwt (it reads a token's expiry, without verifying it),
# click and rich (the command line).
CLIENT_NEEDS = ("grpcio", "protobuf", "googleapis-common-protos", "pyjwt", "click", "rich")
# The generated code of the public APIs; tkv/internal is the services' own.
PROTO_PACKAGES = ("tkv/auth", "tkv/kv")


def requirements() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    by_name = {}
    for spec in project["dependencies"]:
        name = re.match(r"[A-Za-z0-9_.-]+", spec).group(0).lower()
        by_name[name] = re.sub(r"\[[^\]]*\]", "", spec)  # pyjwt[crypto] -> pyjwt: no signing here
    return [by_name[name] for name in CLIENT_NEEDS]


def pyproject() -> str:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    dependencies = "".join(f'    "{spec}",\n' for spec in requirements())
    return f"""[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "tkv-client"
version = "{project["version"]}"
description = "Python client and command line of tkv, the gRPC auth + key/value service on Tarantool"
readme = "README.md"
license = "MIT"
requires-python = "{project["requires-python"]}"
dependencies = [
{dependencies}]

[project.scripts]
tkv = "tkv_client.cli:main"

[tool.setuptools.packages.find]
include = ["tkv_client*", "tkv", "tkv.auth*", "tkv.kv*"]

[tool.setuptools.package-data]
"*" = ["py.typed", "*.pyi"]
"""


def stage(into: Path) -> Path:
    if not (ROOT / "tkv" / "kv" / "v2" / "kv_pb2.py").exists():
        sys.exit("build_client: the protobuf code is missing: run `make gen` first")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "tkv_client", into / "tkv_client", ignore=ignore)
    (into / "tkv").mkdir()
    shutil.copy(ROOT / "tkv" / "__init__.py", into / "tkv" / "__init__.py")
    for package in PROTO_PACKAGES:
        shutil.copytree(ROOT / package, into / package, ignore=ignore)
    shutil.copy(ROOT / "clients" / "python" / "README.md", into / "README.md")
    (into / "pyproject.toml").write_text(pyproject())
    return into


def build(out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tkv-client-") as temp:
        source = stage(Path(temp) / "tkv-client")
        # No build isolation: the build needs only setuptools, which the venv has, and no
        # network.
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out_dir),
             str(source)],
            check=True,
        )  # fmt: skip
    [wheel] = sorted(out_dir.glob("tkv_client-*.whl"))
    return wheel


def main() -> None:
    if sys.argv[1:] == ["--requirements"]:
        print("\n".join(requirements()))
    elif len(sys.argv) == 2:
        print(build(Path(sys.argv[1])))
    else:
        sys.exit("usage: python scripts/build_client.py OUT_DIR | --requirements")


if __name__ == "__main__":
    main()
