"""`buf lint` and `buf breaking` on the public protos (run by `make test`).

    python scripts/check_protos.py

buf's registry is out of reach, so the workspace is built here: protos/ as the module
checked, and the google/api and google/rpc protos of the installed googleapis-common-protos
as a second module (not linted; google/protobuf is built into buf). The breaking check
compares with the protos of the last release, taken from git (`git archive`), built the
same way.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The last release of the API: the key/value API v2 round (the protos `buf breaking`
# compares with). Move it on when a release is made.
RELEASE = "57aabb9a9855b05b758b42a6daecd416fc9b42dd"

BUF_YAML = """\
version: v2
modules:
  - path: protos
    lint:
      use:
        - STANDARD
      except:
        # AIP-131/133 (docs/api.md, "v2": it follows the AIPs): Get and Create return the resource
        # itself (Pair, Grant, Jwks), not a GetPairResponse wrapping it.
        - RPC_RESPONSE_STANDARD_NAME
      ignore_only:
        # docs/api.md, "Watch", "Sharing" fix the JSON of these enums ("PUT", "DELETE", "EXPIRE"; "READER",
        # "WRITER"): a TYPE_/ROLE_ prefix would change what HTTP clients send and get.
        ENUM_VALUE_PREFIX:
          - protos/tkv/kv/v2/kv.proto
    breaking:
      use:
        - FILE
  - path: third_party
"""


def _buf() -> str:
    buf = shutil.which("buf") or str(Path(sys.executable).parent / "buf")
    if not Path(buf).exists():
        sys.exit("check_protos: buf is missing (pip install buf-bin; `make test` installs it)")
    return buf


def _workspace(directory: Path, protos: Path) -> Path:
    """A buf workspace in `directory` with `protos` and the google protos beside them."""
    shutil.copytree(protos, directory / "protos")
    spec = importlib.util.find_spec("google.api.annotations_pb2")
    if spec is None or spec.origin is None:
        sys.exit("check_protos: googleapis-common-protos is not installed")
    google = Path(spec.origin).parents[1]
    for package in ("api", "rpc"):
        target = directory / "third_party" / "google" / package
        shutil.copytree(google / package, target, ignore=shutil.ignore_patterns("*.py", "*.pyi", "__pycache__"))
    (directory / "buf.yaml").write_text(BUF_YAML)
    return directory


def main() -> int:
    buf = _buf()
    with tempfile.TemporaryDirectory(prefix="tkv-buf-") as temp:
        current = _workspace(Path(temp) / "current", ROOT / "protos")
        release = Path(temp) / "release"
        release.mkdir()
        archive = subprocess.run(["git", "archive", RELEASE, "protos"], cwd=ROOT, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(release)], input=archive.stdout, check=True)
        shutil.move(release / "protos", Path(temp) / "release-protos")
        _workspace(release, Path(temp) / "release-protos")
        image = Path(temp) / "release.binpb"
        subprocess.run([buf, "build", "protos", "-o", str(image)], cwd=release, check=True)
        failed = 0
        for what, command in (
            ("buf lint", [buf, "lint", "protos"]),
            (f"buf breaking against {RELEASE[:12]}", [buf, "breaking", "protos", "--against", str(image)]),
        ):
            result = subprocess.run(command, cwd=current, capture_output=True, text=True)
            print(f"{what}: {'ok' if result.returncode == 0 else 'FAILED'}")
            if result.stdout.strip() or result.stderr.strip():
                print(result.stdout + result.stderr, end="")
            failed += result.returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
