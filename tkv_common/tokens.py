"""Access-token verification shared by both services (public keys only).

Tokens are EdDSA (Ed25519) JWTs typed `at+jwt` (RFC 9068). Checks follow RFC 8725: the
algorithm list is pinned, `typ` must match, `kid` is looked up only in the local key set,
headers that point at other keys (`jku`, `x5u`, `jwk`, `x5c`) or demand unknown processing
(`crit`) are refused, `exp`/`iat`/`nbf` are checked with a leeway of at most 30 s, and `iss`
and `aud` must match.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass

import jwt

from . import metrics
from .catalogue import SETTINGS
from .errors import TokenRejected
from .keys import KeySet, KeySettings
from .settings import ConfigError, Env

ALGORITHMS = ["EdDSA"]
TOKEN_TYPE = "at+jwt"
# `account_id` and `token_epoch` name the account the token was issued for and its token
# generation (tarantool/tkv/api.lua token_problem): a deleted account's tokens never work
# for a new account of the same login, and ChangePassword/LogoutAll refuse older tokens.
REQUIRED_CLAIMS = ["sub", "iat", "exp", "jti", "iss", "aud", "account_id", "token_epoch"]
# Headers that would let the token choose its own key or processing rules.
FORBIDDEN_HEADERS = frozenset({"jku", "x5u", "jwk", "x5c", "crit"})
MAX_LEEWAY_SECONDS = 30
# Verified tokens a TokenVerifier remembers unless TKV_JWT_CACHE_SIZE says otherwise.
DEFAULT_CACHE_SIZE = SETTINGS["TKV_JWT_CACHE_SIZE"].default
# Far above any token we issue (~350 bytes); bounds the work spent on garbage headers.
MAX_TOKEN_BYTES = 4096
_BEARER = re.compile(r"bearer +(\S+)", re.IGNORECASE)


@dataclass(frozen=True)
class TokenSettings:
    """What both services must agree on to accept a token."""

    keys: KeySettings
    issuer: str
    audience: str
    leeway_seconds: int
    # Verified tokens remembered (TokenVerifier); 0 turns the cache off.
    cache_size: int = DEFAULT_CACHE_SIZE

    @classmethod
    def from_env(cls, env: Env) -> TokenSettings:
        leeway = env.int("TKV_JWT_LEEWAY_SECONDS")
        if leeway > MAX_LEEWAY_SECONDS:
            raise ConfigError(f"TKV_JWT_LEEWAY_SECONDS must be at most {MAX_LEEWAY_SECONDS} (RFC 8725), got {leeway}")
        return cls(
            keys=KeySettings.from_env(env),
            issuer=env.str("TKV_JWT_ISSUER"),
            audience=env.str("TKV_JWT_AUDIENCE"),
            leeway_seconds=leeway,
            cache_size=env.int("TKV_JWT_CACHE_SIZE"),
        )


@dataclass(frozen=True)
class Claims:
    """The verified claims a handler may rely on."""

    subject: str
    token_id: str
    issued_at: int
    expires_at: int
    account_id: str
    token_epoch: int

    def storage_args(self) -> tuple[str, str, str, int]:
        """What every authenticated stored function takes first (tarantool/tkv/api.lua)."""
        return self.token_id, self.subject, self.account_id, self.token_epoch


# What the authenticated stored functions answer, given storage_args, when the token may
# no longer be used (tarantool/tkv/api.lua token_problem): one entry of every service's
# status table (kv_svc/storage.py, auth_svc/storage.py).
TOKEN_PROBLEMS: dict[str, Callable[[], TokenRejected]] = {
    "revoked": lambda: TokenRejected("access token has been revoked", reason="TOKEN_REVOKED"),
    "no_user": lambda: TokenRejected("the access token's account no longer exists", reason="TOKEN_INVALID"),
    "superseded": lambda: TokenRejected(
        "access token has been revoked: the account's password changed or it logged out everywhere",
        reason="TOKEN_REVOKED",
    ),
}

# Set by the auth interceptor for the duration of one authenticated call.
current_claims: ContextVar[Claims] = ContextVar("current_claims")


def token_expired() -> TokenRejected:
    """The refusal of a token past its `exp`: at verification, and for an open Watch."""
    return TokenRejected("access token has expired", reason="TOKEN_EXPIRED")


def _invalid() -> TokenRejected:
    # The exact cause stays server-side: it only helps someone probing tokens.
    return TokenRejected("access token is invalid", reason="TOKEN_INVALID")


VERIFICATIONS = metrics.Counter(
    metrics.REGISTRY,
    "tkv_token_verifications_total",
    "Signature checks of bearer tokens that passed: cache_hit (verified before, only expiry and key "
    "re-checked) or cache_miss (a full Ed25519 check).",
    ("result",),
)
REFUSALS = metrics.Counter(
    metrics.REGISTRY,
    "tkv_token_refusals_total",
    "Calls refused for their token, by reason: TOKEN_MISSING, TOKEN_INVALID, TOKEN_EXPIRED, "
    "TOKEN_REVOKED (logout, logout everywhere, password change; checked in storage).",
    ("reason",),
)
_HIT, _MISS = VERIFICATIONS.labels("cache_hit"), VERIFICATIONS.labels("cache_miss")


class TokenVerifier:
    """Verifies tokens, remembering the ones that passed.

    An Ed25519 check and two JSON parses cost ~0.15-0.3 ms, on every call of every client.
    A token that verified once is the same bytes next time, so the cache (keyed by the whole
    token, signature included) only re-checks what can change: expiry, and whether its
    signing key is still in the key set (a retired key's tokens stop working at once).
    Revocation is not cached: the storage call checks it every time.
    """

    def __init__(self, keys: KeySet, settings: TokenSettings):
        self._keys = keys
        self._settings = settings
        self._verified: OrderedDict[str, tuple[Claims, str]] = OrderedDict()

    def verify(self, token: str) -> Claims:
        cached = self._verified.get(token)
        if cached is not None:
            claims, kid = cached
            if self._keys.get(kid) is not None and time.time() <= claims.expires_at + self._settings.leeway_seconds:
                self._verified.move_to_end(token)
                _HIT.inc()
                return claims
            del self._verified[token]  # expired or key retired: the full check says which
        claims, kid = self._verify(token)
        _MISS.inc()
        if self._settings.cache_size:
            self._verified[token] = (claims, kid)
            if len(self._verified) > self._settings.cache_size:
                self._verified.popitem(last=False)
        return claims

    def _verify(self, token: str) -> tuple[Claims, str]:
        if len(token) > MAX_TOKEN_BYTES:
            raise TokenRejected("access token is too large", reason="TOKEN_INVALID")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise _invalid() from None
        if (
            FORBIDDEN_HEADERS & header.keys()
            or str(header.get("typ", "")).lower() not in (TOKEN_TYPE, f"application/{TOKEN_TYPE}")
            or header.get("alg") not in ALGORITHMS
        ):
            raise _invalid()
        key = self._keys.get(header.get("kid")) if isinstance(header.get("kid"), str) else None
        if key is None:
            raise _invalid()
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                audience=self._settings.audience,
                issuer=self._settings.issuer,
                leeway=self._settings.leeway_seconds,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError:
            raise token_expired() from None
        except jwt.InvalidTokenError:
            raise _invalid() from None
        if not all(isinstance(claims[name], str) and claims[name] for name in ("sub", "jti", "account_id")):
            raise _invalid()
        epoch = claims["token_epoch"]
        if type(epoch) is not int or epoch < 0:
            raise _invalid()
        verified = Claims(
            claims["sub"], claims["jti"], int(claims["iat"]), int(claims["exp"]), claims["account_id"], epoch
        )
        return verified, header["kid"]


def bearer_token(authorization: str | None) -> str:
    """The token of an `authorization: Bearer <token>` value (scheme case-insensitive)."""
    if not authorization:
        raise TokenRejected(
            "missing access token: send the header `authorization: Bearer <token>`", reason="TOKEN_MISSING"
        )
    if len(authorization) > MAX_TOKEN_BYTES + 64:
        raise TokenRejected("authorization header is too large", reason="TOKEN_INVALID")
    match = _BEARER.fullmatch(authorization.strip())
    if match is None:
        raise TokenRejected("malformed authorization header: expected `Bearer <token>`", reason="TOKEN_INVALID")
    return match.group(1)
