"""Generate the Python stubs (+ .pyi) and Envoy's descriptor set from protos/.

The one place generated code comes from. Outputs are git-ignored and rebuilt by
`make gen` (every make target that runs code depends on it):

- tkv/*/               Python messages, gRPC stubs and type stubs for protos/tkv/**.proto
- envoy/tkv.pb         descriptor set of the public APIs for Envoy's gRPC-JSON transcoder
                       (--include_imports so google/api and google/protobuf travel along,
                       --include_source_info so comments reach reflection-driven tools)

- docs/openapi.json    the OpenAPI 3.1 description of the HTTP API (v1 and v2, every route the
                       gateway serves, every status and limit), made by scripts/openapi.py
                       from the descriptor set; committed, with a drift test
                       (tests/unit/test_api_description.py); Envoy serves it at GET /openapi.json.

With `--openapi OUT_DIR` it writes only the OpenAPI description, to OUT_DIR/openapi.json;
with `--no-openapi` everything but it (the services' image: it ships the committed one, and
the generator needs the services' dependencies, installed after this step).

google/api and google/rpc protos come from the installed googleapis-common-protos package
and google/protobuf from grpcio-tools; nothing third-party is vendored.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "protos"
PY_OUT = ROOT / "tkv"
DESCRIPTOR_OUT = ROOT / "envoy" / "tkv.pb"
OPENAPI_OUT = ROOT / "docs" / "openapi.json"
# The APIs clients see; protos/tkv/internal stays out of Envoy's descriptor set.
# google/rpc ones too, so error details decode for tools that read this descriptor set
# (grpcurl -protoset envoy/tkv.pb).
API_PROTOS = (
    "tkv/auth/v1/auth.proto",
    "tkv/kv/v1/kv.proto",
    "tkv/kv/v2/kv.proto",
)
PUBLIC_PROTOS = (
    *API_PROTOS,
    "google/rpc/error_details.proto",
    "google/rpc/status.proto",
)


def _package_proto_root(module: str) -> Path:
    """Directory that holds the `google/...` tree of an installed proto package."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        sys.exit(f"gen_protos: {module} is not installed (pip install -e .)")
    # google/api/annotations_pb2.py -> the directory containing google/
    return Path(spec.origin).parents[2]


def _protoc(args: list[str], proto_dir: Path = PROTO_DIR) -> None:
    include = [
        f"-I{proto_dir}",
        f"-I{_package_proto_root('google.api.annotations_pb2')}",
        f"-I{Path(protoc.__file__).parent / '_proto'}",
    ]
    code = protoc.main(["grpc_tools.protoc", *include, *args])
    if code != 0:
        sys.exit(f"gen_protos: protoc failed ({code}) for {args[-1]}")


def openapi(out_dir: Path) -> Path:
    """The OpenAPI 3.1 description (scripts/openapi.py) from the descriptor set, in out_dir."""
    sys.path.insert(0, str(ROOT))
    from scripts import openapi as description  # after the stubs exist: it reads the services' limits

    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "openapi.json"
    target.write_text(json.dumps(description.build(DESCRIPTOR_OUT), indent=2, ensure_ascii=False) + "\n")
    return target


def main() -> None:
    if sys.argv[1:2] == ["--openapi"] and len(sys.argv) == 3:
        print(openapi(Path(sys.argv[2])))
        return
    sources = sorted(str(p.relative_to(PROTO_DIR)) for p in PROTO_DIR.rglob("*.proto"))
    # tkv/__init__.py is committed (so editable installs map the package); the rest of
    # tkv/ is generated and replaced wholesale.
    for old in PY_OUT.iterdir():
        if old.is_dir():
            shutil.rmtree(old)
    DESCRIPTOR_OUT.parent.mkdir(exist_ok=True)
    _protoc([f"--python_out={ROOT}", f"--pyi_out={ROOT}", f"--grpc_python_out={ROOT}", *sources])
    # Plain packages, so tools that do not follow namespace packages still find them.
    for directory in (d for d in PY_OUT.rglob("*") if d.is_dir()):
        (directory / "__init__.py").touch()
    _protoc(
        [
            f"--descriptor_set_out={DESCRIPTOR_OUT}",
            "--include_imports",
            "--include_source_info",
            *PUBLIC_PROTOS,
        ]
    )
    published = "docs/openapi.json left as it is (--no-openapi)"
    if "--no-openapi" not in sys.argv[1:]:
        with tempfile.TemporaryDirectory(prefix="tkv-openapi-") as temp:
            shutil.copy(openapi(Path(temp)), OPENAPI_OUT)
        published = str(OPENAPI_OUT.relative_to(ROOT))
    print(f"gen_protos: {len(sources)} protos -> {PY_OUT.name}/, {DESCRIPTOR_OUT.relative_to(ROOT)}; {published}")


if __name__ == "__main__":
    main()
