"""Protections at the Envoy edge, through the real gateway in front of the real services."""

import json
import math
import time
import uuid

import grpc
import jwt
import pytest

from tests.e2e.conftest import grpcurl
from tests.e2e.http_client import assert_shape, call
from tests.stack import Stack, start_all, stop_all
from tkv.auth.v1 import auth_pb2, auth_pb2_grpc

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


# The fixture's token bucket per client address and route: BURST at once, then RATE a second.
BURST, RATE = 4, 1
LIMITED = {"message": "too many login or registration requests from this client; retry in 1 s"}
WRONG_LOGIN = "You have entered an incorrect login or password"


def in_a_row(send, count: int) -> tuple[list, float]:
    """`count` calls of send(i), one after another: their results, and the seconds from just
    before the first began to just after the last ended."""
    started = time.monotonic()
    results = [send(i) for i in range(count)]
    return results, time.monotonic() - started


def assert_bucket(outcomes: list, passed, took: float) -> None:
    """`outcomes` of requests made one after another by a new client, in `took` seconds, as
    its token bucket allows them. The bucket starts full: the first BURST pass, whatever the
    machine's speed. It gains RATE tokens a second from the first request on (Envoy refills
    on access, continuously, not on a timer): no more than BURST + RATE * took pass in all.
    So on a machine that makes the requests within a second exactly BURST pass; a slower
    one is allowed exactly the refills of the time it took, not a margin of the test's."""
    assert outcomes[:BURST] == [passed] * BURST, outcomes
    assert outcomes.count(passed) <= BURST + math.floor(RATE * took), (outcomes, took)


def assert_rate_limited(address: str, path: str, body_of, source: str, passed: int) -> None:
    """12 requests in a row from one client: those its bucket lets through answer `passed`,
    all others 429 with the documented body."""
    replies, took = in_a_row(lambda i: call(address, "POST", path, body_of(i), source=source), 12)
    assert {r.status for r in replies} == {passed, 429}, [r.status for r in replies]
    assert_bucket([r.status for r in replies], passed, took)
    for reply in replies:
        if reply.status == 429:
            assert assert_shape(reply, 429, MESSAGE) == LIMITED
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
    def over_http(i):  # from 127.0.0.1, where a gRPC channel to 127.0.0.1 comes from too
        reply = call(address, "POST", "/api/login/", {"login": f"Nobody{i}", "password": "x"}, source="127.0.0.1")
        if reply.status == 404:
            assert assert_shape(reply, 404, {"token": str, "message": str}) == {"token": "-", "message": WRONG_LOGIN}
            return "passed"
        assert assert_shape(reply, 429, MESSAGE) == LIMITED
        assert reply.headers["retry-after"] == "1"
        return "limited"

    with grpc.insecure_channel(address) as channel:
        stub = auth_pb2_grpc.AuthServiceStub(channel)

        def over_grpc(i):
            with pytest.raises(grpc.RpcError) as refused:
                stub.Login(auth_pb2.LoginRequest(login=f"Nobody{i}", password="y"), timeout=10)
            outcome = (refused.value.code(), refused.value.details())
            if outcome == (grpc.StatusCode.UNAUTHENTICATED, WRONG_LOGIN):
                return "passed"
            assert outcome == (grpc.StatusCode.RESOURCE_EXHAUSTED, "local_rate_limited")  # plain, not JSON
            return "limited"

        # Native gRPC shares Login's bucket (HTTP is routed by the gRPC path the transcoder
        # gives it): 12 requests over HTTP and 4 over gRPC are one run of one bucket. With a
        # bucket of its own, gRPC would let all 4 through.
        grpc.channel_ready_future(channel).result(timeout=10)
        outcomes, took = in_a_row(lambda i: over_http(i) if i < 12 else over_grpc(i), 16)
    assert "limited" in outcomes[:12] and "limited" in outcomes[12:], outcomes
    assert_bucket(outcomes, "passed", took)
    assert call(address, "POST", "/api/login/", {"login": "Other", "password": "x"}, source="127.0.0.9").status == 404


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v2/account:changePassword", {"old_password": "Secr3t!pass", "new_password": "Secr3t!pas2"}),
        ("/v2/account:delete", {"password": "Secr3t!pass"}),
    ],
    ids=["ChangePassword", "DeleteAccount"],
)
def test_the_calls_that_check_a_password_are_rate_limited_per_client(gateway, path, body):
    # docs/security.md: ChangePassword and DeleteAccount check the password as Login does,
    # behind Login's per-client limit, so a stolen token guesses no faster than Login
    # allows. Without a token the service answers 401 at once (no hashing, nothing counted
    # toward the per-address login lock): what passes the edge is told apart by its answer.
    address = f"127.0.0.1:{gateway.gateway_port}"
    source = "127.0.0.6" if "change" in path else "127.0.0.7"
    replies, took = in_a_row(lambda i: call(address, "POST", path, body, source=source), 12)
    assert_bucket([r.status for r in replies], 401, took)
    for reply in replies:
        if reply.status == 401:
            assert assert_shape(reply, 401, {"code": int, "message": str, "details": list})["code"] == 16
        else:
            # v2's google.rpc.Status shape for the gateway's own refusal (docs/api.md, "v2 errors": 429).
            assert assert_shape(reply, 429, {"code": int, "message": str}) == {
                "code": 8,
                "message": "local_rate_limited",
            }
            assert reply.headers["retry-after"] == "1"
    assert 429 in [r.status for r in replies]
    # Another client is not affected.
    assert call(address, "POST", path, body, source="127.0.0.9").status == 401


def test_a_forged_x_forwarded_for_does_not_make_a_new_client(gateway):
    # Each request claims another client; the bucket is still the TCP peer's (127.0.0.5).
    address = f"127.0.0.1:{gateway.gateway_port}"
    replies, took = in_a_row(
        lambda i: call(
            address,
            "POST",
            "/api/login/",
            {"login": f"Forged{i}", "password": "x"},
            headers={"x-forwarded-for": f"203.0.113.{i}"},
            source="127.0.0.5",
        ),
        12,
    )
    assert_bucket([r.status for r in replies], 404, took)
    assert 429 in [r.status for r in replies]


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
    # docs/api.md, "v1 HTTP routes": read with a bad token is 401 {"message"} holding "You are not authorized! Please,
    # sign in or sign up" verbatim; the reason follows it.
    refused = "You are not authorized! Please, sign in or sign up ({})"
    malformed = "malformed authorization header: expected `Bearer <token>`"
    for value, reason in (
        ("Bearer a.b", "access token is invalid"),
        ("Basic Zm9vOmJhcg==", malformed),
        ("Bearer " + "x" * 5000, "authorization header is too large"),
        ("bearer", malformed),
    ):
        reply = call(address, "POST", "/api/read/", {"keys": ["a"]}, headers={"authorization": value})
        assert assert_shape(reply, 401, MESSAGE) == {"message": refused.format(reason)}, value[:20]
    # Control characters are not HTTP: Envoy's HTTP/1 codec refuses the request before any
    # filter runs, so the body is Envoy's own plain text, not the API's JSON.
    reply = call(address, "POST", "/api/read/", {"keys": ["a"]}, headers={"authorization": "Bearer \x01\x02"})
    assert (reply.status, reply.raw) == (400, b"Bad Request")
