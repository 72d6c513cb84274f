"""Access-token verification shared by both services (public key only).

Tokens are EdDSA (Ed25519) JWTs. Verification pins the algorithm list, requires
sub/iat/exp/jti/iss/aud, checks iss and aud, and allows a small clock leeway; anything
else (alg none, HMAC with the public key as secret, tampering, expiry) is rejected.
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from .errors import Unauthenticated
from .settings import ConfigError, Env

ALGORITHMS = ["EdDSA"]
REQUIRED_CLAIMS = ["sub", "iat", "exp", "jti", "iss", "aud"]
# Far above any token we issue (~300 bytes); bounds the work spent on garbage headers.
MAX_TOKEN_BYTES = 4096
_BEARER = re.compile(r"bearer +(\S+)", re.IGNORECASE)


@dataclass(frozen=True)
class TokenSettings:
    """What both services must agree on to accept a token."""

    public_key_path: Path
    issuer: str
    audience: str
    leeway_seconds: int

    @classmethod
    def from_env(cls, env: Env) -> TokenSettings:
        return cls(
            public_key_path=env.path("TKV_JWT_PUBLIC_KEY_FILE", env.data_dir() / "keys" / "jwt-ed25519.pub.pem"),
            issuer=env.str("TKV_JWT_ISSUER", "tkv-auth"),
            audience=env.str("TKV_JWT_AUDIENCE", "tkv"),
            leeway_seconds=env.int("TKV_JWT_LEEWAY_SECONDS", 10, minimum=0),
        )


@dataclass(frozen=True)
class Claims:
    """The verified claims a handler may rely on."""

    subject: str
    token_id: str
    issued_at: int
    expires_at: int


# Set by the auth interceptor for the duration of one authenticated call.
current_claims: ContextVar[Claims] = ContextVar("current_claims")


def read_key_file(path: Path, what: str) -> bytes:
    """The bytes of a PEM key file, or a ConfigError that says how to create one."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"cannot read the JWT {what} {path} ({exc.strerror}); "
            "run `python -m tkv_common.devsecrets` for a development key pair"
        ) from None


def load_public_key(path: Path) -> Ed25519PublicKey:
    key = load_pem_public_key(read_key_file(path, "public key"))
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"{path} is not an Ed25519 public key")
    return key


class TokenVerifier:
    def __init__(self, public_key: Ed25519PublicKey, settings: TokenSettings):
        self._key = public_key
        self._settings = settings

    def verify(self, token: str) -> Claims:
        if len(token) > MAX_TOKEN_BYTES:
            raise Unauthenticated("access token is too large", reason="TOKEN_INVALID")
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=ALGORITHMS,
                audience=self._settings.audience,
                issuer=self._settings.issuer,
                leeway=self._settings.leeway_seconds,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("access token has expired", reason="TOKEN_EXPIRED") from None
        except jwt.InvalidTokenError:
            # The exact cause stays server-side: it only helps someone probing tokens.
            raise Unauthenticated("access token is invalid", reason="TOKEN_INVALID") from None
        if not all(isinstance(claims[name], str) and claims[name] for name in ("sub", "jti")):
            raise Unauthenticated("access token is invalid", reason="TOKEN_INVALID")
        return Claims(claims["sub"], claims["jti"], int(claims["iat"]), int(claims["exp"]))


def bearer_token(authorization: str | None) -> str:
    """The token of an `authorization: Bearer <token>` value (scheme case-insensitive)."""
    if not authorization:
        raise Unauthenticated(
            "missing access token: send the header `authorization: Bearer <token>`", reason="TOKEN_MISSING"
        )
    match = _BEARER.fullmatch(authorization.strip())
    if match is None:
        raise Unauthenticated("malformed authorization header: expected `Bearer <token>`", reason="TOKEN_INVALID")
    return match.group(1)
