"""Tokens signed with a stack's development key, for tests that need valid or forged ones."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import jwt

from auth_svc.tokens import load_private_key


def sign(data_dir: Path, **overrides) -> str:
    now = int(time.time())
    claims = {"sub": "tester", "iat": now, "exp": now + 600, "jti": uuid.uuid4().hex, "iss": "tkv-auth", "aud": "tkv"}
    claims.update(overrides)
    key = load_private_key(data_dir / "keys" / "jwt-ed25519.pem")
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, key, algorithm="EdDSA")


def bearer(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)
