"""Create the development secrets on first start, into the git-ignored data directory.

    python -m tkv_common.devsecrets        # idempotent: existing files are kept

Writes, under $TKV_DATA_DIR (default ./var), private files owner-only:
    keys/jwt-ed25519.pem          auth_svc's token signing key  (or $TKV_JWT_PRIVATE_KEY_FILE)
    keys/jwt-ed25519.pub.pem      the matching public key       (or $TKV_JWT_PUBLIC_KEY_FILE)
    secrets/tarantool-<user>.password   one Tarantool password per service user

Production supplies its own files (TKV_JWT_*_KEY_FILE, TKV_TARANTOOL_PASSWORD[_FILE]);
nothing here is ever committed.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .settings import Env

SERVICE_USERS = ("tkv_auth", "tkv_kv")


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(data)


def ensure(data_dir: Path, private_path: Path | None = None, public_path: Path | None = None) -> list[Path]:
    """Create whatever is missing; returns the paths created."""
    created = []
    private_path = private_path or data_dir / "keys" / "jwt-ed25519.pem"
    public_path = public_path or data_dir / "keys" / "jwt-ed25519.pub.pem"
    if not private_path.exists():
        key = Ed25519PrivateKey.generate()
        _write_private(
            private_path,
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
        )
        public_path.unlink(missing_ok=True)
        created.append(private_path)
    if not public_path.exists():
        key = serialization.load_pem_private_key(private_path.read_bytes(), password=None)
        public_path.parent.mkdir(parents=True, exist_ok=True)
        public_path.write_bytes(
            key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
        created.append(public_path)
    for user in SERVICE_USERS:
        path = data_dir / "secrets" / f"tarantool-{user}.password"
        if not path.exists():
            _write_private(path, secrets.token_urlsafe(32).encode())
            created.append(path)
    return created


def main() -> None:
    env = Env()
    data_dir = env.data_dir()
    private_path = env.path("TKV_JWT_PRIVATE_KEY_FILE", data_dir / "keys" / "jwt-ed25519.pem")
    public_path = env.path("TKV_JWT_PUBLIC_KEY_FILE", data_dir / "keys" / "jwt-ed25519.pub.pem")
    for path in ensure(data_dir, private_path, public_path):
        print(f"devsecrets: created {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
