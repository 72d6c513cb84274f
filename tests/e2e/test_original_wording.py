"""Every row of docs/api.md, "v1 messages", through HTTP (Envoy) and native
gRPC (the same gateway port), against the real processes.

The texts are written out here on purpose, typos included ("onlu", "is already exists",
"successfully logout"): the original's clients match on them, so a "fix" must fail a test.
Each case also requires the HTTP body's message and the gRPC status message to be the same
text, since both come from the one source in the services.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from tests.e2e.http_client import assert_shape, call
from tkv.auth.v1 import auth_pb2, auth_pb2_grpc
from tkv.kv.v1 import kv_pb2, kv_pb2_grpc

PASSWORD = "Secr3t!pass"
GOOD = {"password": PASSWORD, "name": "Anna", "surname": "Smith"}


@dataclass(frozen=True)
class Case:
    """One request, sent as HTTP to `path` and as gRPC to `rpc`, and the message it must get."""

    path: str
    body: dict[str, Any] | None
    rpc: str  # "auth.Register", "kv.Read", ...
    http_status: int
    grpc_code: grpc.StatusCode
    message: str
    token: str = "none"  # "none", "valid", "garbage" or "revoked"


def register_case(**fields: str) -> dict[str, str]:
    return {"login": f"W{uuid.uuid4().hex[:12]}", **GOOD, **fields}


CASES = {
    "register: success": Case(
        "/api/register/", register_case(), "auth.Register", 201, grpc.StatusCode.OK,
        "You have been successfully registered!",
    ),
    "login shorter than 2": Case(
        "/api/register/", register_case(login="a"), "auth.Register", 400, grpc.StatusCode.INVALID_ARGUMENT,
        "Incorrect login: the length should be no less than 2 symbols",
    ),
    "login longer than 64": Case(
        "/api/register/", register_case(login="a" * 65), "auth.Register", 400, grpc.StatusCode.INVALID_ARGUMENT,
        "Incorrect login: the length should be no more than 64 symbols",
    ),
    "login with other characters": Case(
        "/api/register/", register_case(login="al_ice"), "auth.Register", 400, grpc.StatusCode.INVALID_ARGUMENT,
        "Incorrect login: login should have onlu lower-upper latin letters and digits",
    ),
    "password shorter than 8": Case(
        "/api/register/", register_case(password="Se3t!pa"), "auth.Register", 400, grpc.StatusCode.INVALID_ARGUMENT,
        "Incorrect password: the length should be no less than 8 symbols",
    ),
    "password longer than 64": Case(
        "/api/register/", register_case(password="Se3t!" + "p" * 60), "auth.Register", 400,
        grpc.StatusCode.INVALID_ARGUMENT, "Incorrect password: the length should be no more than 64 symbols",
    ),
    **{
        f"password lacks {name}": Case(
            "/api/register/", register_case(password=password), "auth.Register", 400,
            grpc.StatusCode.INVALID_ARGUMENT, f"Incorrect password: the password should have at least one {name}",
        )
        for name, password in (
            ("LOWER_CASE", "SECR3T!PASS"),
            ("UPPER_CASE", "secr3t!pass"),
            ("DIGITS", "Secret!pass"),
            ("SPECIAL_SYMBOLS", "Secr3tpass"),
        )
    },
    "name shorter than 2": Case(
        "/api/register/", register_case(name="A"), "auth.Register", 400, grpc.StatusCode.INVALID_ARGUMENT,
        "Incorrect initial: the length should be no less than 2 symbols (name)",
    ),
    "surname longer than 32": Case(
        "/api/register/", register_case(surname="S" * 33), "auth.Register", 400, grpc.StatusCode.INVALID_ARGUMENT,
        "Incorrect initial: the length should be no more than 32 symbols (surname)",
    ),
    "name with other characters": Case(
        "/api/register/", register_case(name="Roman123"), "auth.Register", 400, grpc.StatusCode.INVALID_ARGUMENT,
        "Incorrect initial: initial should have only lower-upper latin letters (name)",
    ),
    "surname with other characters": Case(
        "/api/register/", register_case(surname="Sm1th"), "auth.Register", 400, grpc.StatusCode.INVALID_ARGUMENT,
        "Incorrect initial: initial should have only lower-upper latin letters (surname)",
    ),
    "login: wrong login or password": Case(
        "/api/login/", {"login": "NoSuchUser1", "password": PASSWORD}, "auth.Login", 404,
        grpc.StatusCode.UNAUTHENTICATED, "You have entered an incorrect login or password",
    ),
    "logout: no token": Case(
        "/api/logout/", None, "auth.Logout", 401, grpc.StatusCode.UNAUTHENTICATED,
        "You have not been authorized! (missing access token: send the header `authorization: Bearer <token>`)",
    ),
    "logout: bad token": Case(
        "/api/logout/", None, "auth.Logout", 401, grpc.StatusCode.UNAUTHENTICATED,
        "You have not been authorized! (access token is invalid)", token="garbage",
    ),
    "read: no token": Case(
        "/api/read/", {"keys": ["a"]}, "kv.Read", 401, grpc.StatusCode.UNAUTHENTICATED,
        "You are not authorized! Please, sign in or sign up "
        "(missing access token: send the header `authorization: Bearer <token>`)",
    ),
    "write: bad token": Case(
        "/api/write/", {"data": {"a": 1}}, "kv.Write", 401, grpc.StatusCode.UNAUTHENTICATED,
        "You are not authorized! Please, sign in or sign up (access token is invalid)", token="garbage",
    ),
    "read: revoked token": Case(
        "/api/read/", {"keys": ["a"]}, "kv.Read", 401, grpc.StatusCode.UNAUTHENTICATED,
        "You are not authorized! Please, sign in or sign up (access token has been revoked)", token="revoked",
    ),
    "read: no keys": Case(
        "/api/read/", {"keys": []}, "kv.Read", 400, grpc.StatusCode.INVALID_ARGUMENT,
        "Incorrect keys: you have not passed any keys", token="valid",
    ),
    "write: no keys": Case(
        "/api/write/", {"data": {}}, "kv.Write", 400, grpc.StatusCode.INVALID_ARGUMENT,
        "Incorrect keys: you have not passed any keys", token="valid",
    ),
    "read: duplicate keys": Case(
        "/api/read/", {"keys": ["key1", "key2", "key1", "key2", "key1"]}, "kv.Read", 400,
        grpc.StatusCode.INVALID_ARGUMENT, "Incorrect keys: you cannot pass identical keys: key1 key2", token="valid",
    ),
    "read: absent keys": Case(
        "/api/read/", {"keys": ["absent-key1", "absent-key2"]}, "kv.Read", 400, grpc.StatusCode.NOT_FOUND,
        "These keys don't exist: absent-key1 absent-key2", token="valid",
    ),
}  # fmt: skip


@pytest.fixture(scope="module")
def channel(processes):
    with grpc.insecure_channel(processes.gateway) as channel:
        yield channel


@pytest.fixture(scope="module")
def tokens(processes):
    """A valid token, and one revoked by a logout."""
    login = f"Words{uuid.uuid4().hex[:8]}"
    user = {"login": login, "password": PASSWORD, "name": "Anna", "surname": "Smith"}
    assert call(processes.gateway, "POST", "/api/register/", user).status == 201

    def login_token() -> str:
        reply = call(processes.gateway, "POST", "/api/login/", {"login": login, "password": PASSWORD})
        return assert_shape(reply, 201, {"token": str, "message": str})["token"]

    revoked = login_token()
    assert call(processes.gateway, "GET", "/api/logout/", token=revoked).status == 200
    return {"valid": login_token(), "revoked": revoked, "garbage": "not.a.jwt", "none": None}


def grpc_call(channel, rpc: str, body: dict[str, Any] | None, token: str | None) -> tuple[grpc.StatusCode, str, Any]:
    service, method = rpc.split(".")
    if service == "auth":
        stub, requests = auth_pb2_grpc.AuthServiceStub(channel), auth_pb2
    else:
        stub, requests = kv_pb2_grpc.KeyValueServiceStub(channel), kv_pb2
    request = getattr(requests, f"{method}Request")(**(body or {}))
    metadata = [("authorization", f"Bearer {token}")] if token else None
    try:
        response = getattr(stub, method)(request, metadata=metadata, timeout=20)
    except grpc.RpcError as error:
        return error.code(), error.details(), None
    return grpc.StatusCode.OK, getattr(response, "message", getattr(response, "status", "")), response


def fresh(body: dict[str, Any] | None) -> dict[str, Any] | None:
    """The same request with a new login, where it registers one (each call must be the first)."""
    if body and "name" in body and body["login"].startswith("W"):
        return {**body, "login": f"W{uuid.uuid4().hex[:12]}"}
    return body


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_the_originals_text_through_http_and_grpc(processes, channel, tokens, case: Case):
    token = tokens[case.token]
    method = "GET" if case.path == "/api/logout/" else "POST"
    reply = call(processes.gateway, method, case.path, fresh(case.body), token=token)
    http_message = reply.body["message"]
    assert reply.status == case.http_status, reply.raw
    code, grpc_message, _ = grpc_call(channel, case.rpc, fresh(case.body), token)
    assert code == case.grpc_code
    assert http_message == grpc_message == case.message


def test_a_taken_login_through_http_and_grpc(processes, channel):
    user = register_case()
    assert call(processes.gateway, "POST", "/api/register/", user).status == 201
    taken = {**user, "login": user["login"].lower()}
    reply = call(processes.gateway, "POST", "/api/register/", taken)
    assert assert_shape(reply, 400, {"message": str}) == {"message": "A user with this login is already exists"}
    code, message, _ = grpc_call(channel, "auth.Register", taken, None)
    assert (code, message) == (grpc.StatusCode.ALREADY_EXISTS, "A user with this login is already exists")


def test_login_and_logout_success_through_http_and_grpc(processes, channel):
    user = register_case()
    assert call(processes.gateway, "POST", "/api/register/", user).status == 201
    credentials = {"login": user["login"], "password": PASSWORD}
    http_login = assert_shape(
        call(processes.gateway, "POST", "/api/login/", credentials), 201, {"token": str, "message": str}
    )
    code, grpc_login_message, grpc_login = grpc_call(channel, "auth.Login", credentials, None)
    assert code == grpc.StatusCode.OK
    for message in (http_login["message"], grpc_login_message):
        assert message.startswith("You have been successfully authenticated (the token expires at ")
    logged_out = "You have been successfully logout from your account! The token has been revoked."
    reply = call(processes.gateway, "GET", "/api/logout/", token=http_login["token"])
    assert assert_shape(reply, 200, {"message": str}) == {"message": logged_out}
    assert grpc_call(channel, "auth.Logout", None, grpc_login.token)[:2] == (grpc.StatusCode.OK, logged_out)


def test_a_write_of_existing_keys_says_so_in_the_originals_words(processes, channel, tokens):
    k1, k2, new = (f"{name}-{uuid.uuid4().hex[:8]}" for name in ("k1", "k2", "new"))
    first = call(processes.gateway, "POST", "/api/write/", {"data": {k1: 1, k2: 2}}, token=tokens["valid"])
    assert first.body == {"status": "success"}
    reply = call(processes.gateway, "POST", "/api/write/", {"data": {k1: 1, new: 3, k2: 2}}, token=tokens["valid"])
    status = f"success, but these keys have not been written: {k1} {k2}. Because they have already been in kv store"
    assert assert_shape(reply, 201, {"status": str, "skipped_keys": list}) == {
        "status": status,
        "skipped_keys": [k1, k2],
    }
    # One key over gRPC: a generated client sends a Struct's entries in hash order.
    code, grpc_status, response = grpc_call(channel, "kv.Write", {"data": {k2: 2}}, tokens["valid"])
    assert (code, list(response.skipped_keys)) == (grpc.StatusCode.OK, [k2])
    assert (
        grpc_status
        == f"success, but these keys have not been written: {k2}. Because they have already been in kv store"
    )


def test_a_request_breaking_several_rules_gets_each_rules_text_joined(processes, channel):
    body = {"login": "a_", "password": "abc", "name": "R2", "surname": "-"}
    expected = "; ".join(
        [
            "Incorrect login: login should have onlu lower-upper latin letters and digits",
            "Incorrect password: the length should be no less than 8 symbols",
            "Incorrect password: the password should have at least one UPPER_CASE",
            "Incorrect password: the password should have at least one DIGITS",
            "Incorrect password: the password should have at least one SPECIAL_SYMBOLS",
            "Incorrect initial: initial should have only lower-upper latin letters (name)",
            "Incorrect initial: the length should be no less than 2 symbols (surname)",
            "Incorrect initial: initial should have only lower-upper latin letters"
            " (surname: a '-' must stand between two letters)",
        ]
    )
    reply = call(processes.gateway, "POST", "/api/register/", body)
    assert assert_shape(reply, 400, {"message": str}) == {"message": expected}
    assert grpc_call(channel, "auth.Register", body, None)[:2] == (grpc.StatusCode.INVALID_ARGUMENT, expected)


@pytest.mark.parametrize(
    ("path", "raw"),
    [
        ("/api/register/", b'{"login": "Bob", "password": 5}'),
        ("/api/register", b"not json"),
        ("/api/login/", b'{"login": ["Bob"]}'),
        ("/api/login", b'{"login": "Bob", "password": '),
        ("/api/read/", b'{"keys": [5]}'),
        ("/api/read", b'["keys"]'),
        ("/api/write/", b'{"data": [1, 2]}'),
        ("/api/write", b"{data: 1}"),
    ],
)
def test_a_malformed_body_is_422_with_a_message_on_every_route(processes, tokens, path, raw):
    reply = call(processes.gateway, "POST", path, raw=raw, token=tokens["valid"])
    # Not the login-failure shape: a login with a malformed body never reached the rules.
    body = assert_shape(reply, 422, {"message": str})
    assert body["message"].startswith("Incorrect request structure: ")
