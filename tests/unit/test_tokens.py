"""Token issuing and verification, including the classic JWT attacks (RFC 8725)."""

import base64
import dataclasses
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from auth_svc.tokens import TokenIssuer
from tests.tokens_for_tests import sign
from tkv_common.errors import Unauthenticated
from tkv_common.keys import KeySet, KeySettings, ensure_signing_key, key_id, load_signing_key
from tkv_common.settings import ConfigError
from tkv_common.tokens import TokenSettings, TokenVerifier, bearer_token


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tokens")
    ensure_signing_key(KeySettings(path / "keys" / "signing.pem", path / "keys" / "public", 10))
    return path


@pytest.fixture(scope="module")
def settings(data_dir):
    keys = KeySettings(data_dir / "keys" / "signing.pem", data_dir / "keys" / "public", 10)
    return TokenSettings(keys=keys, issuer="tkv-auth", audience="tkv", leeway_seconds=10)


@pytest.fixture(scope="module")
def verifier(settings):
    return TokenVerifier(KeySet(settings.keys), settings)


@pytest.fixture(scope="module")
def key(data_dir):
    return load_signing_key(data_dir / "keys" / "signing.pem")


VALID_CLAIMS = {
    "sub": "x",
    "iat": 1,
    "exp": 4_000_000_000,
    "jti": "j",
    "iss": "tkv-auth",
    "aud": "tkv",
    "account_id": "a",
    "token_epoch": 0,
}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def reject_reason(verifier, token: str) -> str:
    """The reason a token is refused for. Accepted, or refused with anything but
    Unauthenticated (which the service would answer as INTERNAL, not as a refused token),
    fails the test."""
    try:
        claims = verifier.verify(token)
    except Unauthenticated as error:
        return error.reason
    except Exception as error:
        pytest.fail(f"the token was refused with {error!r}, not as UNAUTHENTICATED")
    pytest.fail(f"the token was accepted: {claims}")


def test_issued_token_carries_every_required_claim_and_header_and_verifies(settings, verifier, key):
    issued = TokenIssuer(settings, ttl_seconds=1800).issue("Alice", "account-1", 3)
    payload = jwt.decode(issued.token, options={"verify_signature": False})
    assert set(payload) >= {"sub", "iat", "exp", "jti", "iss", "aud", "account_id", "token_epoch"}
    assert (payload["account_id"], payload["token_epoch"]) == ("account-1", 3)
    assert payload["exp"] - payload["iat"] == 1800
    assert jwt.get_unverified_header(issued.token) == {"alg": "EdDSA", "typ": "at+jwt", "kid": key_id(key.public_key())}
    verified = verifier.verify(issued.token)
    assert (verified.subject, verified.expires_at) == ("Alice", issued.expires_at)
    assert verified.storage_args() == (verified.token_id, "Alice", "account-1", 3)


def test_every_token_has_its_own_id(settings, verifier):
    issuer = TokenIssuer(settings, ttl_seconds=1800)
    assert len({verifier.verify(issuer.issue("Alice", "account-1", 0).token).token_id for _ in range(20)}) == 20


def test_kid_is_the_rfc7638_thumbprint():
    # RFC 8037 appendix A.3: the thumbprint of its example Ed25519 key.
    raw = base64.urlsafe_b64decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
    public = serialization.load_der_public_key(bytes.fromhex("302a300506032b6570032100") + raw)
    assert key_id(public) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def test_expired_token_is_rejected(data_dir, verifier):
    assert reject_reason(verifier, sign(data_dir, exp=int(time.time()) - 60)) == "TOKEN_EXPIRED"


def test_leeway_accepts_a_token_that_expired_seconds_ago(data_dir, verifier):
    assert verifier.verify(sign(data_dir, exp=int(time.time()) - 3)).subject == "tester"


@pytest.mark.parametrize("claim", ["iat", "nbf"])
def test_token_from_the_future_is_rejected(data_dir, verifier, claim):
    assert reject_reason(verifier, sign(data_dir, **{claim: int(time.time()) + 3600})) == "TOKEN_INVALID"


def test_alg_none_is_rejected(verifier, key):
    header = b64(json.dumps({"alg": "none", "typ": "at+jwt", "kid": key_id(key.public_key())}).encode())
    body = b64(json.dumps(VALID_CLAIMS).encode())
    assert reject_reason(verifier, f"{header}.{body}.") == "TOKEN_INVALID"


def test_hmac_signed_with_the_public_key_is_rejected(verifier, key):
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = b64(json.dumps({"alg": "HS256", "typ": "at+jwt", "kid": key_id(key.public_key())}).encode())
    body = b64(json.dumps(VALID_CLAIMS).encode())
    signature = b64(hmac.new(public_pem, f"{header}.{body}".encode(), hashlib.sha256).digest())
    assert reject_reason(verifier, f"{header}.{body}.{signature}") == "TOKEN_INVALID"


def test_token_signed_with_another_key_claiming_our_kid_is_rejected(data_dir, verifier, key):
    forged = sign(data_dir, key=Ed25519PrivateKey.generate(), headers={"kid": key_id(key.public_key())})
    assert reject_reason(verifier, forged) == "TOKEN_INVALID"


def test_token_with_an_unknown_kid_is_rejected(data_dir, verifier):
    assert reject_reason(verifier, sign(data_dir, key=Ed25519PrivateKey.generate())) == "TOKEN_INVALID"


def test_rs256_token_is_rejected(verifier, key):
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode({"sub": "x"}, rsa_key, algorithm="RS256", headers={"kid": key_id(key.public_key())})
    assert reject_reason(verifier, token) == "TOKEN_INVALID"


def test_tampered_payload_is_rejected(data_dir, verifier):
    header, _, signature = sign(data_dir).split(".")
    forged = b64(json.dumps({**VALID_CLAIMS, "sub": "Mallory"}).encode())
    assert reject_reason(verifier, f"{header}.{forged}.{signature}") == "TOKEN_INVALID"


@pytest.mark.parametrize("missing", ["sub", "iat", "exp", "jti", "iss", "aud", "account_id", "token_epoch"])
def test_token_without_a_required_claim_is_rejected(data_dir, verifier, missing):
    assert reject_reason(verifier, sign(data_dir, **{missing: None})) == "TOKEN_INVALID"


def test_a_token_for_another_audience_is_rejected(data_dir, verifier):
    assert verifier.verify(sign(data_dir, aud="tkv")).subject == "tester"
    assert reject_reason(verifier, sign(data_dir, aud="other-api")) == "TOKEN_INVALID"
    assert reject_reason(verifier, sign(data_dir, aud=["other-api"])) == "TOKEN_INVALID"


def test_a_token_from_another_issuer_is_rejected(data_dir, verifier):
    assert verifier.verify(sign(data_dir, iss="tkv-auth")).subject == "tester"
    assert reject_reason(verifier, sign(data_dir, iss="someone-else")) == "TOKEN_INVALID"


@pytest.mark.parametrize(
    "override",
    [
        {"sub": ""},
        {"jti": 7},
        {"account_id": ""},
        {"account_id": 5},
        {"token_epoch": -1},
        {"token_epoch": "0"},
        {"token_epoch": 1.5},
        {"token_epoch": True},
    ],
)
def test_wrong_claim_types_are_rejected(data_dir, verifier, override):
    assert reject_reason(verifier, sign(data_dir, **override)) == "TOKEN_INVALID"


@pytest.mark.parametrize(
    "header",
    [
        {"typ": "JWT"},
        {"typ": None},
        {"kid": None},
        {"jku": "https://evil.example/jwks"},
        {"x5u": "https://evil"},
        {"jwk": {"kty": "OKP"}},
        {"x5c": ["MIIB"]},
        {"crit": ["exp"]},
    ],
)
def test_headers_outside_the_profile_are_rejected(data_dir, settings, verifier, header):
    # RFC 8725: explicit typing, kid only from the local set, no key-carrying headers.
    token = sign(data_dir, headers=header)
    # The token is validly signed with our key, and its header is what the case says: the
    # refusal can only come from the profile check.
    head, body, signature = token.split(".")
    public_key = load_signing_key(settings.keys.signing_key_file).public_key()
    public_key.verify(base64.urlsafe_b64decode(signature + "=="), f"{head}.{body}".encode())  # raises if not
    sent = json.loads(base64.urlsafe_b64decode(head + "=="))
    for name, value in header.items():
        assert sent.get(name) == value
    assert reject_reason(verifier, token) == "TOKEN_INVALID"


def test_a_validly_signed_token_over_4_kib_is_refused_and_one_under_it_accepted(data_dir, verifier):
    def token_of_length(length: int) -> str:
        padding = 0
        while len(token := sign(data_dir, pad="p" * padding)) < length:
            padding += max(1, (length - len(token)) * 3 // 4)
        assert len(token) in (length, length + 1, length + 2, length + 3), len(token)
        return token

    under = token_of_length(4000)
    assert verifier.verify(under).subject == "tester"
    over = token_of_length(4097)
    with pytest.raises(Unauthenticated) as refused:
        verifier.verify(over)
    assert (refused.value.reason, refused.value.message) == ("TOKEN_INVALID", "access token is too large")


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "ä.ö.ü", "x" * 5000, "eyJ.eyJ.sig"])
def test_malformed_tokens_are_rejected(verifier, garbage):
    assert reject_reason(verifier, garbage) == "TOKEN_INVALID"


def test_leeway_over_30_seconds_is_a_configuration_error(tmp_path):
    from tkv_common.settings import Env

    with pytest.raises(ConfigError, match="at most 30"):
        TokenSettings.from_env(Env({"TKV_DATA_DIR": str(tmp_path), "TKV_JWT_LEEWAY_SECONDS": "31"}))


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
        ("Bearer " + "x" * 10_000, "TOKEN_INVALID"),
    ],
)
def test_authorization_without_bearer_scheme_is_rejected(header, reason):
    with pytest.raises(Unauthenticated) as error:
        bearer_token(header)
    assert error.value.reason == reason


def test_a_cached_token_is_still_rejected_once_expired(data_dir, settings):
    strict = TokenVerifier(KeySet(settings.keys), TokenSettings(settings.keys, "tkv-auth", "tkv", leeway_seconds=0))
    expires_at = int(time.time()) + 1
    token = sign(data_dir, exp=expires_at)
    assert strict.verify(token).subject == "tester"  # now cached
    while time.time() <= expires_at:  # at most a second: the clock passing exp is the test
        time.sleep(0.02)
    assert reject_reason(strict, token) == "TOKEN_EXPIRED"


def test_a_cached_token_is_rejected_once_its_key_is_retired(tmp_path):
    keys = KeySettings(tmp_path / "signing.pem", tmp_path / "public", 10)
    ensure_signing_key(keys)
    settings = TokenSettings(keys=keys, issuer="tkv-auth", audience="tkv", leeway_seconds=10)
    key_set = KeySet(keys)
    verifier = TokenVerifier(key_set, settings)
    token = TokenIssuer(settings, ttl_seconds=600).issue("Alice", "account-1", 0).token
    assert verifier.verify(token).subject == "Alice"  # now cached
    from tkv_common.keys import activate, prepare, retire

    old = jwt.get_unverified_header(token)["kid"]
    prepare(keys)
    activate(keys)
    retire(keys, old)
    key_set.reload()
    assert reject_reason(verifier, token) == "TOKEN_INVALID"


def test_the_cache_is_bounded_and_can_be_turned_off(data_dir, settings):
    verifier = TokenVerifier(KeySet(settings.keys), dataclasses.replace(settings, cache_size=100))
    for _ in range(150):
        verifier.verify(sign(data_dir))
    assert len(verifier._verified) == 100
    off = TokenVerifier(KeySet(settings.keys), dataclasses.replace(settings, cache_size=0))
    token = sign(data_dir)
    assert off.verify(token) == off.verify(token)  # verified in full each time
    assert len(off._verified) == 0


@pytest.mark.parametrize("breakage", ["half-written file", "empty directory"])
@pytest.mark.log_errors_expected("keeping the previous JWT public keys")
def test_a_failed_key_reload_keeps_the_previous_keys(tmp_path, breakage, caplog):
    keys = KeySettings(tmp_path / "keys" / "signing.pem", tmp_path / "keys" / "public", 10)
    ensure_signing_key(keys)
    key_set = KeySet(keys)
    token = sign(tmp_path)
    kid = jwt.get_unverified_header(token)["kid"]
    if breakage == "half-written file":
        (keys.public_keys_dir / "next.pem").write_text("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2Vw")
    else:
        for path in keys.public_keys_dir.glob("*.pem"):
            path.unlink()
    key_set.reload()
    assert key_set.get(kid) is not None
    assert "keeping the previous JWT public keys" in caplog.text
    verifier = TokenVerifier(key_set, TokenSettings(keys=keys, issuer="tkv-auth", audience="tkv", leeway_seconds=10))
    assert verifier.verify(token).subject == "tester"
