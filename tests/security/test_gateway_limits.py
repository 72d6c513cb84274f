"""Protections at the Envoy edge, through the real gateway in front of the real services."""

import json
import time
import uuid

import jwt
import pytest

from tests.e2e.conftest import grpcurl
from tests.e2e.http_client import assert_shape, call
from tests.stack import Stack, start_all, stop_all

MESSAGE = {"message": str}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    stack = Stack(
        tmp_path_factory.mktemp("edge"),
        extra_env={
            "TKV_GATEWAY_AUTH_RATE": "1",
            "TKV_GATEWAY_AUTH_BURST": "4",
            "TKV_LOGIN_MAX_FAILURES": "2",
            "TKV_LOGIN_LOCK_SECONDS": "30",
        },
    )
    processes = start_all(stack)
    yield stack
    stop_all(processes)


def assert_rate_limited(address: str, path: str, body_of, source: str, passed: int) -> None:
    """12 requests at once from one client: a burst of 4, then one per second, all others
    429 with the documented body; those let through answer `passed`."""
    started = time.monotonic()
    replies = [call(address, "POST", path, body_of(i), source=source) for i in range(12)]
    refilled = int(time.monotonic() - started) + 1  # one token per second, as configured
    limited = [r for r in replies if r.status == 429]
    assert 12 - 4 - refilled <= len(limited) <= 8, ([r.status for r in replies], refilled)
    assert {r.status for r in replies} == {passed, 429}
    for reply in limited:
        assert assert_shape(reply, 429, MESSAGE) == {
            "message": "too many login or registration requests from this client; retry in 1 s"
        }
        assert reply.headers["retry-after"] == "1"
    # Another client is not affected.
    assert call(address, "POST", path, body_of(99), source="127.0.0.9").status == passed


def test_register_is_rate_limited_per_client(gateway):
    address = f"127.0.0.1:{gateway.gateway_port}"

    def invalid_registration(i):  # answered 400 at once: no hashing, no account made
        return {"login": f"r{i}", "password": "x", "name": "A", "surname": "B"}

    assert_rate_limited(address, "/api/register/", invalid_registration, source="127.0.0.3", passed=400)


def test_login_is_rate_limited_per_client_over_http_and_grpc(gateway):
    address = f"127.0.0.1:{gateway.gateway_port}"
    # Distinct names, so the per-name lock in auth_svc stays out of the way.
    login = lambda i: {"login": f"Nobody{i}", "password": "x"}  # noqa: E731
    assert_rate_limited(address, "/api/login/", login, source="127.0.0.1", passed=404)
    # Native gRPC shares Login's bucket (1 token per second now) and hears RESOURCE_EXHAUSTED.
    errors = [
        grpcurl(
            "-protoset",
            "envoy/tkv.pb",
            "-d",
            '{"login": "Nobody", "password": "y"}',
            address,
            "tkv.auth.v1.AuthService/Login",
        ).stderr
        for _ in range(4)
    ]
    limited = [json.loads(e) for e in errors if '"code": 8' in e]
    assert limited, errors
    assert limited[0]["message"] == "local_rate_limited"  # a plain gRPC message, not JSON


def test_a_forged_x_forwarded_for_does_not_make_a_new_client(gateway):
    # Each request claims another client; the bucket is still the TCP peer's (127.0.0.5).
    address = f"127.0.0.1:{gateway.gateway_port}"
    statuses = [
        call(
            address,
            "POST",
            "/api/login/",
            {"login": f"Forged{i}", "password": "x"},
            headers={"x-forwarded-for": f"203.0.113.{i}"},
            source="127.0.0.5",
        ).status
        for i in range(12)
    ]
    assert statuses.count(429) >= 12 - 4 - 2, statuses


def test_other_routes_are_not_rate_limited(gateway):
    address = f"127.0.0.1:{gateway.gateway_port}"
    statuses = {call(address, "GET", "/.well-known/jwks.json").status for _ in range(20)}
    assert statuses == {200}


def test_jwks_is_published_through_the_gateway_and_verifies_issued_tokens(gateway):
    address = f"127.0.0.1:{gateway.gateway_port}"
    jwks = assert_shape(call(address, "GET", "/.well-known/jwks.json/"), 200, {"keys": list})
    [key] = jwks["keys"]
    assert set(key) == {"kty", "crv", "x", "kid", "use", "alg"}
    assert (key["kty"], key["crv"], key["use"], key["alg"]) == ("OKP", "Ed25519", "sig", "EdDSA")
    # A third party verifies our tokens with nothing but the JWKS.
    login = f"Jwks{uuid.uuid4().hex[:8]}"
    user = {"login": login, "password": "Secr3t!pass", "name": "Anna", "surname": "Smith"}
    grpcurl("-d", json.dumps(user), f"127.0.0.1:{gateway.auth_port}", "tkv.auth.v1.AuthService/Register")
    token = grpcurl(
        "-d",
        f'{{"login": "{login}", "password": "Secr3t!pass"}}',
        f"127.0.0.1:{gateway.auth_port}",
        "tkv.auth.v1.AuthService/Login",
    ).stdout
    token = json.loads(token)["token"]
    assert jwt.get_unverified_header(token)["kid"] == key["kid"]
    claims = jwt.decode(token, jwt.PyJWK(key).key, algorithms=["EdDSA"], audience="tkv", issuer="tkv-auth")
    assert claims["sub"] == login


def test_a_throttled_login_is_429_with_retry_after_over_http(gateway):
    # The edge bucket is per client address: a client of its own (127.0.0.4) has a full
    # one, so the service-side lock is what answers.
    address = f"127.0.0.1:{gateway.gateway_port}"
    name = f"Locked{uuid.uuid4().hex[:8]}"
    attempt = {"login": name, "password": "Wr0ng!pass"}
    statuses = [call(address, "POST", "/api/login/", attempt, source="127.0.0.4").status for _ in range(2)]
    assert statuses == [404, 404]
    reply = call(address, "POST", "/api/login/", attempt, source="127.0.0.4")
    body = assert_shape(reply, 429, MESSAGE)
    assert body["message"].startswith("too many failed logins for this login name; retry in ")
    assert int(reply.headers["retry-after"]) > 20


def test_oversized_and_garbled_authorization_headers_are_refused(gateway):
    address = f"127.0.0.1:{gateway.gateway_port}"
    huge = call(address, "POST", "/api/read/", {"keys": ["a"]}, headers={"authorization": "Bearer " + "a" * 40_000})
    assert huge.status == 431  # Envoy: request headers over 32 KiB
    for value in ("Bearer \x01\x02", "Bearer a.b", "Basic Zm9vOmJhcg==", "Bearer " + "x" * 5000, "bearer"):
        reply = call(address, "POST", "/api/read/", {"keys": ["a"]}, headers={"authorization": value})
        assert reply.status in (400, 401), (value[:20], reply.status)
        if reply.status == 401:
            assert_shape(reply, 401, MESSAGE)
