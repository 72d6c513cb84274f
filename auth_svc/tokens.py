"""Issuing access tokens: EdDSA-signed JWTs. Only auth_svc holds the private key."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from tkv_common.settings import ConfigError
from tkv_common.tokens import TokenSettings, read_key_file


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: int


def load_private_key(path: Path) -> Ed25519PrivateKey:
    key = load_pem_private_key(read_key_file(path, "private key"), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path} is not an Ed25519 private key")
    return key


class TokenIssuer:
    def __init__(self, private_key: Ed25519PrivateKey, settings: TokenSettings, ttl_seconds: int):
        self._key = private_key
        self._settings = settings
        self._ttl = ttl_seconds

    def issue(self, subject: str) -> IssuedToken:
        now = int(time.time())
        expires_at = now + self._ttl
        claims = {
            "sub": subject,
            "iat": now,
            "exp": expires_at,
            # Names this token alone, so Logout can revoke it and nothing else.
            "jti": uuid.uuid4().hex,
            "iss": self._settings.issuer,
            "aud": self._settings.audience,
        }
        token = jwt.encode(claims, self._key, algorithm="EdDSA", headers={"typ": "JWT"})
        return IssuedToken(token, expires_at)
