"""Forged, stale and hostile tokens against every authenticated RPC of both services."""

import base64
import hashlib
import hmac
import json
import time

import grpc
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf import struct_pb2

from tests.inprocess import PASSWORD, register_and_login, start_services, stop_services, unique
from tests.status_details import reason
from tests.tokens_for_tests import sign
from tkv.auth.v1 import auth_pb2
from tkv.kv.v1 import kv_pb2
from tkv.kv.v2 import kv_pb2 as v2
from tkv_common.keys import key_id, load_signing_key


@pytest.fixture(scope="module")
async def svc(tarantool_stack):
    harness = await start_services(tarantool_stack)
    yield harness
    await stop_services(harness)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


WRONG = "Wr0ng!pass"


def calls(svc):
    """Every authenticated RPC of both services, as a function of the metadata to send. The
    account calls that check a password get a wrong one (a valid token: PERMISSION_DENIED);
    LogoutAll and Logout come last, since they end the token."""
    one = struct_pb2.Value(number_value=1)
    return {
        "Read": lambda md: svc.kv.Read(kv_pb2.ReadRequest(keys=["a"]), metadata=md),
        "Write": lambda md: svc.kv.Write(kv_pb2.WriteRequest(data={unique(): 1}), metadata=md),
        "GetPair": lambda md: svc.kv2.GetPair(v2.GetPairRequest(namespace="me", key="a"), metadata=md),
        "BatchGetPairs": lambda md: svc.kv2.BatchGetPairs(
            v2.BatchGetPairsRequest(namespace="me", keys=["a"]), metadata=md
        ),
        "PutPair": lambda md: svc.kv2.PutPair(v2.PutPairRequest(namespace="me", key=unique(), value=one), metadata=md),
        "BatchPutPairs": lambda md: svc.kv2.BatchPutPairs(
            v2.BatchPutPairsRequest(namespace="me", pairs=[v2.PairToPut(key=unique(), value=one)]), metadata=md
        ),
        "DeletePair": lambda md: svc.kv2.DeletePair(v2.DeletePairRequest(namespace="me", key="a"), metadata=md),
        "BatchDeletePairs": lambda md: svc.kv2.BatchDeletePairs(
            v2.BatchDeletePairsRequest(namespace="me", keys=["a"]), metadata=md
        ),
        "ListPairs": lambda md: svc.kv2.ListPairs(v2.ListPairsRequest(namespace="me"), metadata=md),
        # A stream: its first message (the watch is open) or its error.
        "Watch": lambda md: first_message(svc.kv2.Watch(v2.WatchRequest(namespace="me", prefix="a"), metadata=md)),
        "CreateGrant": lambda md: svc.kv2.CreateGrant(
            v2.CreateGrantRequest(namespace="me", grantee="nobody0000x", role=v2.READER), metadata=md
        ),
        "ListGrants": lambda md: svc.kv2.ListGrants(v2.ListGrantsRequest(), metadata=md),
        "DeleteGrant": lambda md: svc.kv2.DeleteGrant(
            v2.DeleteGrantRequest(namespace="me", grantee="nobody0000x"), metadata=md
        ),
        "ChangePassword": lambda md: svc.auth.ChangePassword(
            auth_pb2.ChangePasswordRequest(old_password=WRONG, new_password="N3w-Secret!"), metadata=md
        ),
        "DeleteAccount": lambda md: svc.auth.DeleteAccount(auth_pb2.DeleteAccountRequest(password=WRONG), metadata=md),
        "LogoutAll": lambda md: svc.auth.LogoutAll(auth_pb2.LogoutAllRequest(), metadata=md),
        "Logout": lambda md: svc.auth.Logout(auth_pb2.LogoutRequest(), metadata=md),
    }


async def first_message(stream) -> None:
    try:
        await stream.read()
    finally:
        stream.cancel()


async def rejections(svc, metadata, names=None) -> dict[str, tuple[str, str | None]]:
    outcome = {}
    for name, call in calls(svc).items():
        if names is not None and name not in names:
            continue
        try:
            await call(metadata)
            outcome[name] = ("OK", None)
        except grpc.aio.AioRpcError as error:
            outcome[name] = (error.code().name, reason(error))
    return outcome


def account_of(svc, login: str) -> dict:
    """The claims that name a real user's account, for tokens minted by the tests."""
    return {"account_id": svc.stack.console(f"box.space.users:get('{login}').account_id"), "token_epoch": 0}


def forged_tokens(data_dir, subject, account_id="forged"):
    key = load_signing_key(data_dir / "keys" / "signing.pem")
    kid = key_id(key.public_key())
    now = int(time.time())
    claims = {
        "sub": subject,
        "iat": now,
        "exp": now + 600,
        "jti": "j" + str(now),
        "iss": "tkv-auth",
        "aud": "tkv",
        "account_id": account_id,
        "token_epoch": 0,
    }
    body = b64(json.dumps(claims).encode())
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    hs_header = b64(json.dumps({"alg": "HS256", "typ": "at+jwt", "kid": kid}).encode())
    header, _, signature = sign(data_dir, sub=subject, account_id=account_id).split(".")
    return {
        "alg none": f"{b64(json.dumps({'alg': 'none', 'typ': 'at+jwt', 'kid': kid}).encode())}.{body}.",
        "HS256 keyed with the public key": f"{hs_header}.{body}."
        + b64(hmac.new(public_pem, f"{hs_header}.{body}".encode(), hashlib.sha256).digest()),
        "tampered payload": f"{header}.{b64(json.dumps({**claims, 'sub': 'admin'}).encode())}.{signature}",
        "another key, our kid": sign(
            data_dir, sub=subject, account_id=account_id, key=Ed25519PrivateKey.generate(), headers={"kid": kid}
        ),
        "unknown kid": sign(data_dir, sub=subject, account_id=account_id, key=Ed25519PrivateKey.generate()),
        "wrong audience": sign(data_dir, sub=subject, account_id=account_id, aud="another-api"),
        "wrong issuer": sign(data_dir, sub=subject, account_id=account_id, iss="someone-else"),
        "expired": sign(data_dir, sub=subject, account_id=account_id, iat=now - 4000, exp=now - 600),
        "not yet valid": sign(data_dir, sub=subject, account_id=account_id, nbf=now + 600),
        "issued in the future": sign(data_dir, sub=subject, account_id=account_id, iat=now + 600),
        "jku header": sign(data_dir, sub=subject, account_id=account_id, headers={"jku": "http://127.0.0.1:9/jwks"}),
        "embedded jwk": sign(
            data_dir, sub=subject, account_id=account_id, headers={"jwk": {"kty": "OKP", "crv": "Ed25519", "x": "AA"}}
        ),
        "crit header": sign(data_dir, sub=subject, account_id=account_id, headers={"crit": ["exp"]}),
        "untyped": sign(data_dir, sub=subject, account_id=account_id, headers={"typ": "JWT"}),
    }


def _part(segment: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(segment + "=="))


# What makes each forged token an attack, checked on the token itself: a forgery that missed
# its point would be refused for some other reason and prove nothing about this one.
ATTACKS = {
    "alg none": lambda header, claims, signature: header["alg"] == "none" and signature == "",
    "HS256 keyed with the public key": lambda header, claims, signature: header["alg"] == "HS256",
    "tampered payload": lambda header, claims, signature: claims["sub"] == "admin",
    "another key, our kid": lambda header, claims, signature: header["alg"] == "EdDSA" and "kid" in header,
    "unknown kid": lambda header, claims, signature: header["alg"] == "EdDSA" and "kid" in header,
    "wrong audience": lambda header, claims, signature: claims["aud"] == "another-api",
    "wrong issuer": lambda header, claims, signature: claims["iss"] == "someone-else",
    "expired": lambda header, claims, signature: claims["exp"] < time.time() - 60,
    "not yet valid": lambda header, claims, signature: claims["nbf"] > time.time() + 60,
    "issued in the future": lambda header, claims, signature: claims["iat"] > time.time() + 60,
    "jku header": lambda header, claims, signature: "jku" in header,
    "embedded jwk": lambda header, claims, signature: "jwk" in header,
    "crit header": lambda header, claims, signature: header.get("crit") == ["exp"],
    "untyped": lambda header, claims, signature: header["typ"] != "at+jwt",
}


def test_each_forged_token_carries_its_attack(tmp_path):
    from tkv_common.devsecrets import ensure

    ensure(tmp_path)
    forged = forged_tokens(tmp_path, "x")
    assert set(forged) == set(ATTACKS)
    for attack, token in forged.items():
        head, body, signature = token.split(".")
        assert ATTACKS[attack](_part(head), _part(body), signature), attack
    # "another key, our kid" names our key while another key signed it; "unknown kid" names
    # the key that signed it, which we do not have.
    our_key = load_signing_key(tmp_path / "keys" / "signing.pem").public_key()
    assert _part(forged["unknown kid"].split(".")[0])["kid"] != key_id(our_key)
    head, body, signature = forged["another key, our kid"].split(".")
    assert _part(head)["kid"] == key_id(our_key)
    with pytest.raises(InvalidSignature):
        our_key.verify(base64.urlsafe_b64decode(signature + "=="), f"{head}.{body}".encode())


def test_the_calls_tried_are_every_authenticated_rpc_of_both_services():
    services = [
        auth_pb2.DESCRIPTOR.services_by_name["AuthService"],
        kv_pb2.DESCRIPTOR.services_by_name["KeyValueService"],
        v2.DESCRIPTOR.services_by_name["KeyValueService"],
    ]
    public = {"Register", "Login", "GetJwks"}  # no token needed
    assert set(calls(None)) == {method.name for service in services for method in service.methods} - public


@pytest.mark.parametrize("attack", ATTACKS)
async def test_forged_or_stale_tokens_are_rejected_by_every_rpc(svc, attack):
    login, _ = await register_and_login(svc)
    token = forged_tokens(svc.stack.data_dir, login, account_of(svc, login)["account_id"])[attack]
    outcome = await rejections(svc, (("authorization", f"Bearer {token}"),))
    expected = "TOKEN_EXPIRED" if attack == "expired" else "TOKEN_INVALID"
    assert outcome == {name: ("UNAUTHENTICATED", expected) for name in calls(svc)}


async def test_a_genuine_token_passes_the_same_checks(svc):
    login, _ = await register_and_login(svc)
    token = sign(svc.stack.data_dir, sub=login, **account_of(svc, login))
    md = (("authorization", f"Bearer {token}"),)
    outcome = await rejections(svc, md, names=set(calls(svc)) - {"LogoutAll", "Logout"})
    assert outcome == {
        "Read": ("NOT_FOUND", "KEYS_NOT_FOUND"),
        "Write": ("OK", None),
        "GetPair": ("NOT_FOUND", "KEYS_NOT_FOUND"),
        "BatchGetPairs": ("OK", None),
        "PutPair": ("OK", None),
        "BatchPutPairs": ("OK", None),
        "DeletePair": ("NOT_FOUND", "KEYS_NOT_FOUND"),
        "BatchDeletePairs": ("OK", None),
        "ListPairs": ("OK", None),
        "Watch": ("OK", None),
        "CreateGrant": ("NOT_FOUND", "USER_NOT_FOUND"),
        "ListGrants": ("OK", None),
        "DeleteGrant": ("NOT_FOUND", "GRANT_NOT_FOUND"),
        "ChangePassword": ("PERMISSION_DENIED", "WRONG_PASSWORD"),
        "DeleteAccount": ("PERMISSION_DENIED", "WRONG_PASSWORD"),
    }
    assert (await rejections(svc, md, names={"LogoutAll"})) == {"LogoutAll": ("OK", None)}


async def test_a_revoked_token_is_rejected_by_every_rpc(svc):
    _, token = await register_and_login(svc)
    await svc.auth.Logout(auth_pb2.LogoutRequest(), metadata=(("authorization", f"Bearer {token}"),))
    outcome = await rejections(svc, (("authorization", f"Bearer {token}"),))
    assert outcome == {name: ("UNAUTHENTICATED", "TOKEN_REVOKED") for name in calls(svc)}


async def test_the_token_of_a_user_who_no_longer_exists_is_rejected(svc):
    login, token = await register_and_login(svc)
    svc.stack.console(f"box.space.users:delete('{login}')")
    outcome = await rejections(svc, (("authorization", f"Bearer {token}"),))
    assert outcome == {name: ("UNAUTHENTICATED", "TOKEN_INVALID") for name in calls(svc)}


@pytest.mark.parametrize("value", ["", "Bearer", "Bearer  ", "Token abc", "Bearer a b c", "Bearer " + "A" * 5000])
async def test_garbled_or_oversized_authorization_is_rejected(svc, value):
    outcome = await rejections(svc, (("authorization", value),))
    assert all(code == "UNAUTHENTICATED" for code, _ in outcome.values()), outcome


async def second_token(svc, login: str) -> str:
    return (await svc.auth.Login(auth_pb2.LoginRequest(login=login, password=PASSWORD))).token


@pytest.mark.parametrize("operation", ["ChangePassword", "LogoutAll", "DeleteAccount"])
async def test_every_token_of_the_account_is_refused_by_every_rpc_right_after(svc, operation):
    login, first = await register_and_login(svc)
    second = await second_token(svc, login)
    md = (("authorization", f"Bearer {first}"),)
    if operation == "ChangePassword":
        request = auth_pb2.ChangePasswordRequest(old_password=PASSWORD, new_password="N3w-Secret!")
        await svc.auth.ChangePassword(request, metadata=md)
        expected = "TOKEN_REVOKED"
    elif operation == "LogoutAll":
        await svc.auth.LogoutAll(auth_pb2.LogoutAllRequest(), metadata=md)
        expected = "TOKEN_REVOKED"
    else:
        await svc.auth.DeleteAccount(auth_pb2.DeleteAccountRequest(password=PASSWORD), metadata=md)
        # A new account of the same login accepts no token of the old one.
        await svc.auth.Register(auth_pb2.RegisterRequest(login=login, password=PASSWORD, name="Anna", surname="Smith"))
        expected = "TOKEN_INVALID"
    for token in (first, second):
        outcome = await rejections(svc, (("authorization", f"Bearer {token}"),))
        assert outcome == {name: ("UNAUTHENTICATED", expected) for name in calls(svc)}
