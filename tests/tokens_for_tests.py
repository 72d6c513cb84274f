"""Tokens signed with a stack's development key, for tests that need valid or forged ones."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import jwt

from tkv_common.keys import key_id, load_signing_key


def sign(data_dir: Path, *, headers: dict | None = None, key=None, **overrides) -> str:
    """A token as auth_svc would issue it; `overrides` change claims (None drops one),
    `headers` change the JOSE header (None drops one), `key` signs with another Ed25519 key.
    Dropped or not, the token is validly signed over the header it carries."""
    now = int(time.time())
    claims = {
        "sub": "tester",
        "iat": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
        "iss": "tkv-auth",
        "aud": "tkv",
        "account_id": "00000000-0000-0000-0000-000000000000",
        "token_epoch": 0,
    }
    claims.update(overrides)
    key = key or load_signing_key(data_dir / "keys" / "signing.pem")
    header = {"typ": "at+jwt", "kid": key_id(key.public_key()), **(headers or {})}
    # PyJWT writes typ "JWT" unless told typ=None, which it then leaves out; other
    # headers are left out here.
    header = {name: value for name, value in header.items() if value is not None or name == "typ"}
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, key, algorithm="EdDSA", headers=header)


def bearer(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)
