"""Issuing access tokens: EdDSA-signed JWTs. Only auth_svc holds a private key."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass

import jwt

from tkv_common.keys import key_id, load_signing_key
from tkv_common.tokens import TOKEN_TYPE, TokenSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: int


class TokenIssuer:
    def __init__(self, settings: TokenSettings, ttl_seconds: int):
        self._settings = settings
        self._ttl = ttl_seconds
        self._key = load_signing_key(settings.keys.signing_key_file)
        self._kid = key_id(self._key.public_key())

    @property
    def kid(self) -> str:
        return self._kid

    def reload(self) -> None:
        """Pick up a rotated signing key (`python -m tkv_common.keys activate`)."""
        try:
            key = load_signing_key(self._settings.keys.signing_key_file)
        except (OSError, ValueError) as exc:
            log.error("keeping the previous signing key", extra={"error": str(exc)})
            return
        kid = key_id(key.public_key())
        if kid != self._kid:
            log.info("signing key changed", extra={"kid": kid})
            self._key, self._kid = key, kid

    def issue(self, subject: str, account_id: str, token_epoch: int) -> IssuedToken:
        """A token for login `subject` of the account `account_id` at its `token_epoch`."""
        now = int(time.time())
        expires_at = now + self._ttl
        claims = {
            "sub": subject,
            "account_id": account_id,
            "token_epoch": token_epoch,
            "iat": now,
            "exp": expires_at,
            # Names this token alone, so Logout can revoke it and nothing else.
            "jti": uuid.uuid4().hex,
            "iss": self._settings.issuer,
            "aud": self._settings.audience,
        }
        token = jwt.encode(claims, self._key, algorithm="EdDSA", headers={"typ": TOKEN_TYPE, "kid": self._kid})
        return IssuedToken(token, expires_at)
