"""Render envoy/envoy.template.yaml into a ready-to-run config directory.

    python scripts/render_envoy.py OUT_DIR

OUT_DIR receives envoy.yaml, http_api.lua (both rendered from their templates) and the
descriptor set tkv.pb (from `make gen`), so Envoy needs nothing else. Placeholders come from the environment, with the
same defaults as the services:

    TKV_GATEWAY_LISTEN        127.0.0.1:8080   HTTP/JSON and gRPC
    TKV_ENVOY_ADMIN_LISTEN    127.0.0.1:9901   admin (keep it on loopback)
    TKV_AUTH_UPSTREAM         $TKV_AUTH_LISTEN or 127.0.0.1:50051
    TKV_KV_UPSTREAM           $TKV_KV_LISTEN or 127.0.0.1:50052
    TKV_MAX_REQUEST_BYTES     4 MiB            largest JSON body accepted (413 above)
    TKV_GATEWAY_MAX_RESPONSE_BYTES  64 MiB     largest JSON body returned
    TKV_GATEWAY_MAX_CONNECTIONS     4096
"""

from __future__ import annotations

import shutil
import string
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tkv_common.settings import ConfigError, Env  # noqa: E402

ENVOY_DIR = ROOT / "envoy"


def placeholders(env: Env, config_dir: Path) -> dict[str, str]:
    gateway = env.address("TKV_GATEWAY_LISTEN", "127.0.0.1:8080")
    admin = env.address("TKV_ENVOY_ADMIN_LISTEN", "127.0.0.1:9901")
    auth = env.address("TKV_AUTH_UPSTREAM", env.str("TKV_AUTH_LISTEN", "127.0.0.1:50051"))
    kv = env.address("TKV_KV_UPSTREAM", env.str("TKV_KV_LISTEN", "127.0.0.1:50052"))
    return {
        "GATEWAY_HOST": gateway.host,
        "GATEWAY_PORT": str(gateway.port),
        "ADMIN_HOST": admin.host,
        "ADMIN_PORT": str(admin.port),
        "AUTH_HOST": auth.host,
        "AUTH_PORT": str(auth.port),
        "KV_HOST": kv.host,
        "KV_PORT": str(kv.port),
        "CONFIG_DIR": str(config_dir),
        "MAX_REQUEST_BYTES": str(env.int("TKV_MAX_REQUEST_BYTES", 4 * 1024 * 1024)),
        "MAX_RESPONSE_BYTES": str(env.int("TKV_GATEWAY_MAX_RESPONSE_BYTES", 64 * 1024 * 1024)),
        "MAX_CONNECTIONS": str(env.int("TKV_GATEWAY_MAX_CONNECTIONS", 4096)),
    }


def render(out_dir: Path, env: Env | None = None) -> Path:
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    descriptor = ENVOY_DIR / "tkv.pb"
    if not descriptor.exists():
        raise ConfigError(f"{descriptor} is missing: run `make gen` first")
    values = placeholders(env or Env(), out_dir)
    for template, target in (("envoy.template.yaml", "envoy.yaml"), ("http_api.template.lua", "http_api.lua")):
        text = string.Template((ENVOY_DIR / template).read_text()).substitute(values)
        (out_dir / target).write_text(text)
    shutil.copy(descriptor, out_dir / "tkv.pb")
    return out_dir / "envoy.yaml"


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: python scripts/render_envoy.py OUT_DIR")
    try:
        print(render(Path(sys.argv[1])))
    except ConfigError as exc:
        sys.exit(f"render_envoy: {exc}")


if __name__ == "__main__":
    main()
