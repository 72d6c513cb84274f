"""Create the development secrets on first start, into the git-ignored data directory.

    python -m tkv_common.devsecrets        # idempotent: existing files are kept

Writes, under $TKV_DATA_DIR, private files owner-only:
    keys/signing.pem              auth_svc's token signing key   (or $TKV_JWT_SIGNING_KEY_FILE)
    keys/public/<kid>.pem         its public half                (or in $TKV_JWT_PUBLIC_KEYS_DIR)
    secrets/tarantool-<user>.password   one Tarantool password per service user

Production supplies its own (TKV_JWT_SIGNING_KEY_FILE, TKV_JWT_PUBLIC_KEYS_DIR, TKV_TARANTOOL_PASSWORD[_FILE]);
nothing here is ever committed.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

from .keys import KeySettings, ensure_signing_key
from .settings import Env

# One password per Tarantool user: the two services, and replicas (tarantool/tkv/schema.lua).
SERVICE_USERS = ("tkv_auth", "tkv_kv", "tkv_replicator")


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(data)


def ensure(data_dir: Path, keys: KeySettings | None = None) -> list[Path]:
    """Create whatever is missing; returns the paths created."""
    keys = keys or KeySettings.from_env(Env({"TKV_DATA_DIR": str(data_dir)}))
    created = ensure_signing_key(keys)
    for user in SERVICE_USERS:
        path = data_dir / "secrets" / f"tarantool-{user}.password"
        if not path.exists():
            _write_private(path, secrets.token_urlsafe(32).encode())
            created.append(path)
    return created


def main() -> None:
    env = Env()
    for path in ensure(env.data_dir(), KeySettings.from_env(env)):
        print(f"devsecrets: created {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
