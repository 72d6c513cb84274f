"""Token issuing and verification, including the classic JWT attacks."""

import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from auth_svc.tokens import TokenIssuer
from tkv_common.errors import Unauthenticated
from tkv_common.tokens import TokenSettings, TokenVerifier, bearer_token

SETTINGS = TokenSettings(public_key_path=None, issuer="tkv-auth", audience="tkv", leeway_seconds=10)
KEY = Ed25519PrivateKey.generate()
VERIFIER = TokenVerifier(KEY.public_key(), SETTINGS)
ISSUER = TokenIssuer(KEY, SETTINGS, ttl_seconds=1800)


def claims(**overrides):
    now = int(time.time())
    base = {"sub": "Alice", "iat": now, "exp": now + 600, "jti": "j1", "iss": "tkv-auth", "aud": "tkv"}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def reject_reason(token: str) -> str:
    with pytest.raises(Unauthenticated) as error:
        VERIFIER.verify(token)
    return error.value.reason


def test_issued_token_carries_every_required_claim_and_verifies():
    issued = ISSUER.issue("Alice")
    payload = jwt.decode(issued.token, options={"verify_signature": False})
    assert set(payload) >= {"sub", "iat", "exp", "jti", "iss", "aud"}
    assert payload["exp"] - payload["iat"] == 1800
    assert jwt.get_unverified_header(issued.token)["alg"] == "EdDSA"
    verified = VERIFIER.verify(issued.token)
    assert (verified.subject, verified.expires_at) == ("Alice", issued.expires_at)


def test_every_token_has_its_own_id():
    assert ISSUER.issue("Alice").token != ISSUER.issue("Alice").token
    ids = {VERIFIER.verify(ISSUER.issue("Alice").token).token_id for _ in range(20)}
    assert len(ids) == 20


def test_expired_token_is_rejected():
    token = jwt.encode(claims(exp=int(time.time()) - 60), KEY, algorithm="EdDSA")
    assert reject_reason(token) == "TOKEN_EXPIRED"


def test_leeway_accepts_a_token_that_expired_seconds_ago():
    token = jwt.encode(claims(exp=int(time.time()) - 3), KEY, algorithm="EdDSA")
    assert VERIFIER.verify(token).subject == "Alice"


def test_alg_none_is_rejected():
    header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims()).encode())
    assert reject_reason(f"{header}.{body}.") == "TOKEN_INVALID"


def test_hmac_signed_with_the_public_key_is_rejected():
    public_pem = KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims()).encode())
    import hashlib
    import hmac

    signature = b64(hmac.new(public_pem, f"{header}.{body}".encode(), hashlib.sha256).digest())
    assert reject_reason(f"{header}.{body}.{signature}") == "TOKEN_INVALID"


def test_token_signed_with_another_ed25519_key_is_rejected():
    token = jwt.encode(claims(), Ed25519PrivateKey.generate(), algorithm="EdDSA")
    assert reject_reason(token) == "TOKEN_INVALID"


def test_rs256_token_is_rejected():
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert reject_reason(jwt.encode(claims(), rsa_key, algorithm="RS256")) == "TOKEN_INVALID"


def test_tampered_payload_is_rejected():
    header, _, signature = ISSUER.issue("Alice").token.split(".")
    forged = b64(json.dumps(claims(sub="Mallory")).encode())
    assert reject_reason(f"{header}.{forged}.{signature}") == "TOKEN_INVALID"


@pytest.mark.parametrize("missing", ["sub", "iat", "exp", "jti", "iss", "aud"])
def test_token_without_a_required_claim_is_rejected(missing):
    token = jwt.encode(claims(**{missing: None}), KEY, algorithm="EdDSA")
    assert reject_reason(token) == "TOKEN_INVALID"


@pytest.mark.parametrize("override", [{"iss": "someone-else"}, {"aud": "other-api"}, {"sub": ""}, {"jti": 7}])
def test_wrong_issuer_audience_or_claim_types_are_rejected(override):
    assert reject_reason(jwt.encode(claims(**override), KEY, algorithm="EdDSA")) == "TOKEN_INVALID"


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "ä.ö.ü", "x" * 5000, "eyJ.eyJ.sig"])
def test_malformed_tokens_are_rejected(garbage):
    assert reject_reason(garbage) == "TOKEN_INVALID"


@pytest.mark.parametrize("header", ["Bearer tok", "bearer tok", "BEARER tok", "  Bearer   tok  "])
def test_bearer_scheme_is_case_insensitive(header):
    assert bearer_token(header) == "tok"


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "TOKEN_MISSING"),
        ("", "TOKEN_MISSING"),
        ("tok", "TOKEN_INVALID"),
        ("Basic dXNlcg==", "TOKEN_INVALID"),
        ("Bearer", "TOKEN_INVALID"),
        ("Bearer a b", "TOKEN_INVALID"),
        ("Bearertok", "TOKEN_INVALID"),
    ],
)
def test_authorization_without_bearer_scheme_is_rejected(header, reason):
    with pytest.raises(Unauthenticated) as error:
        bearer_token(header)
    assert error.value.reason == reason
