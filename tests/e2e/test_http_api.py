"""The documented HTTP API through the real Envoy in front of the real services."""

import json
import socket
import uuid

import pytest

from tests.e2e.conftest import grpcurl_error, grpcurl_ok
from tests.e2e.http_client import assert_shape, call
from tests.stack import Stack, envoy

MESSAGE = {"message": str}
PASSWORD = "Secr3t!pass"


def new_user(processes, slash: str = "/") -> tuple[str, str]:
    login = f"Http{uuid.uuid4().hex[:10]}"
    user = {"login": login, "password": PASSWORD, "name": "Anna", "surname": "Smith"}
    assert_shape(call(processes.gateway, "POST", f"/api/register{slash}", user), 201, MESSAGE)
    reply = call(processes.gateway, "POST", f"/api/login{slash}", {"login": login, "password": PASSWORD})
    return login, assert_shape(reply, 201, {"token": str, "message": str})["token"]


@pytest.mark.parametrize("slash", ["/", ""])
def test_every_route_succeeds_with_the_documented_code_and_body(processes, slash):
    _, token = new_user(processes, slash)
    gateway = processes.gateway
    key = f"k-{uuid.uuid4().hex}"
    written = assert_shape(
        call(gateway, "POST", f"/api/write{slash}", {"data": {key: {"v": [1, None]}}}, token=token),
        201,
        {"status": str},
    )
    assert written == {"status": "success"}
    read = assert_shape(call(gateway, "POST", f"/api/read{slash}", {"keys": [key]}, token=token), 200, {"data": dict})
    assert read == {"data": {key: {"v": [1, None]}}}
    logout = assert_shape(call(gateway, "GET", f"/api/logout{slash}", token=token), 200, MESSAGE)
    assert logout == {"message": "You have been successfully logout from your account! The token has been revoked."}
    after = assert_shape(call(gateway, "POST", f"/api/read{slash}", {"keys": [key]}, token=token), 401, MESSAGE)
    assert after == {"message": "You are not authorized! Please, sign in or sign up (access token has been revoked)"}


def test_write_of_existing_keys_reports_them(processes):
    _, token = new_user(processes)
    a, b = f"a-{uuid.uuid4().hex}", f"b-{uuid.uuid4().hex}"
    call(processes.gateway, "POST", "/api/write/", {"data": {a: 1, b: 2}}, token=token)
    reply = call(processes.gateway, "POST", "/api/write/", {"data": {a: 3, "fresh-" + a: 4}}, token=token)
    body = assert_shape(reply, 201, {"status": str, "skipped_keys": list})
    assert body == {
        "status": f"success, but these keys have not been written: {a}. Because they have already been in kv store",
        "skipped_keys": [a],
    }


def test_register_errors_are_400_with_every_rules_text(processes):
    reply = call(
        processes.gateway, "POST", "/api/register/", {"login": "a", "password": "x", "name": "-", "surname": "B"}
    )
    message = assert_shape(reply, 400, MESSAGE)["message"]
    assert message.split("; ") == [
        "Incorrect login: the length should be no less than 2 symbols",
        "Incorrect password: the length should be no less than 8 symbols",
        "Incorrect password: the password should have at least one UPPER_CASE",
        "Incorrect password: the password should have at least one DIGITS",
        "Incorrect password: the password should have at least one SPECIAL_SYMBOLS",
        "Incorrect initial: the length should be no less than 2 symbols (name)",
        "Incorrect initial: initial should have only lower-upper latin letters"
        " (name: a '-' must stand between two letters)",
        "Incorrect initial: the length should be no less than 2 symbols (surname)",
    ]
    login, _ = new_user(processes)
    taken = call(
        processes.gateway,
        "POST",
        "/api/register",
        {"login": login.upper(), "password": PASSWORD, "name": "Bob", "surname": "Jones"},
    )
    assert assert_shape(taken, 400, MESSAGE) == {"message": "A user with this login is already exists"}


def test_login_failure_is_404_with_a_dash_token_and_identical_for_both_causes(processes):
    login, _ = new_user(processes)
    bodies = []
    for attempt in ({"login": login, "password": "Wr0ng!pass"}, {"login": "NoSuchUser1", "password": PASSWORD}):
        bodies.append(
            assert_shape(call(processes.gateway, "POST", "/api/login/", attempt), 404, {"token": str, "message": str})
        )
    assert bodies[0] == bodies[1] == {"token": "-", "message": "You have entered an incorrect login or password"}


def test_read_errors_are_400(processes):
    _, token = new_user(processes)
    gateway = processes.gateway
    absent = f"absent-{uuid.uuid4().hex}"
    cases = [
        ({"keys": []}, "Incorrect keys: you have not passed any keys"),
        ({"keys": ["a", "a"]}, "Incorrect keys: you cannot pass identical keys: a"),
        ({"keys": [absent]}, f"These keys don't exist: {absent}"),
    ]
    for body, expected in cases:
        assert assert_shape(call(gateway, "POST", "/api/read/", body, token=token), 400, MESSAGE) == {
            "message": expected
        }


def test_error_messages_are_decoded_and_json_escaped(processes):
    _, token = new_user(processes)
    keys = ['quote"inside', "back\\slash", "ключ ✓", "tab\there", "percent%20"]
    reply = call(processes.gateway, "POST", "/api/read/", {"keys": keys}, token=token)
    message = assert_shape(reply, 400, MESSAGE)["message"]
    # Keys holding quotes, backslashes or spaces are listed as JSON strings; others bare.
    assert message == (
        "These keys don't exist: " + " ".join(json.dumps(k, ensure_ascii=False) for k in keys[:4]) + " percent%20"
    )


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/read/", {"keys": ["a"]}),
        ("POST", "/api/write", {"data": {"a": 1}}),
        ("GET", "/api/logout/", None),
    ],
)
def test_routes_needing_a_token_answer_401_without_one(processes, method, path, body):
    refusal = (
        "You have not been authorized!" if "logout" in path else "You are not authorized! Please, sign in or sign up"
    )
    assert assert_shape(call(processes.gateway, method, path, body), 401, MESSAGE) == {
        "message": f"{refusal} (missing access token: send the header `authorization: Bearer <token>`)"
    }


@pytest.mark.parametrize(
    ("path", "raw", "detail"),
    [
        ("/api/login/", b'{"login": "x",', "Unexpected end of string"),  # not JSON, login included
        ("/api/login", b"[1, 2]", "Root element must be a message"),
        ("/api/login/", b'{"login": "x", "password": 5}', "password: invalid value 5"),
        ("/api/register", b'{"login": 5}', "login: invalid value 5"),
        ("/api/register/", b'{"login": "ab", "name": ["x"]}', "not repeating"),
        ("/api/read/", b'{"keys": [1, 2]}', "for type TYPE_STRING"),
        ("/api/read", b'{"keys": [{"a": 1}]}', "keys"),
        ("/api/write/", b'{"data": {"k": 1, "k": 2}}', "Repeated map key"),  # rejected, not collapsed
        ("/api/write", b'{"data": [1]}', "not repeating"),
        ("/api/write/", b'{"data": "x"}', "data: invalid value"),
        ("/api/read/", b"", "the body is empty"),
    ],
)
def test_a_body_that_is_not_json_or_has_a_wrong_type_is_422_on_every_route(processes, path, raw, detail):
    _, token = new_user(processes)
    message = assert_shape(call(processes.gateway, "POST", path, raw=raw, token=token), 422, MESSAGE)["message"]
    assert message.startswith("Incorrect request structure: ")
    assert detail in message


def test_the_gateways_json_leniencies_documented_in_the_readme(processes):
    # Kept from the original API's behaviour: unknown members are ignored, and a bare string
    # where a list of strings is expected is read as a one-element list.
    _, token = new_user(processes)
    key = f"lenient-{uuid.uuid4().hex}"
    written = call(processes.gateway, "POST", "/api/write/", {"data": {key: 1}, "extra": [1, 2]}, token=token)
    assert assert_shape(written, 201, {"status": str}) == {"status": "success"}
    read = call(processes.gateway, "POST", "/api/read/", {"keys": key, "unknown": {"a": 1}}, token=token)
    assert assert_shape(read, 200, {"data": dict}) == {"data": {key: 1}}


def test_an_unknown_query_parameter_stays_400(processes):
    _, token = new_user(processes)
    reply = call(processes.gateway, "POST", "/api/read?debug=1", {"keys": ["a"]}, token=token)
    assert 'Could not find field "debug"' in assert_shape(reply, 400, MESSAGE)["message"]


def test_unknown_path_is_404_json(processes):
    assert assert_shape(call(processes.gateway, "GET", "/api/nothing"), 404, MESSAGE) == {
        "message": "no such endpoint: /api/nothing"
    }


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [("GET", "/api/login/", "POST"), ("POST", "/api/logout", "GET"), ("DELETE", "/api/read/", "POST")],
)
def test_wrong_method_is_405_json_with_allow(processes, method, path, allowed):
    reply = call(processes.gateway, method, path)
    assert assert_shape(reply, 405, MESSAGE)["message"].endswith(f"use {allowed}")
    assert reply.headers["allow"] == allowed


def test_body_over_the_limit_is_413_json_before_the_body_is_read(processes):
    # Envoy answers as soon as it sees Content-Length, then closes: read the reply the way
    # curl does, after sending only the start of the body.
    length = 4 * 1024 * 1024 + 1
    host, port = processes.gateway.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            f"POST /api/write/ HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            f"content-length: {length}\r\n\r\n".encode()
            + b'{"data": {"k": "'
            + b"x" * 65536
        )
        head, _, body = sock.recv(65536).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 ")
    assert b"content-type: application/json" in head.lower()
    assert json.loads(body) == {"message": f"request body is {length} bytes; the limit is {4 * 1024 * 1024}"}


def test_chunked_body_over_the_limit_is_413_json_and_writes_nothing(processes):
    _, token = new_user(processes)
    key = f"huge-{uuid.uuid4().hex}"
    raw = json.dumps({"data": {key: "x" * (4 * 1024 * 1024 + 10)}}).encode()
    reply = call(processes.gateway, "POST", "/api/write/", raw=raw, token=token, chunked=True)
    assert "larger than max" in assert_shape(reply, 413, MESSAGE)["message"]
    assert call(processes.gateway, "POST", "/api/read/", {"keys": [key]}, token=token).status == 400


def test_value_near_the_limit_round_trips_through_http(processes):
    _, token = new_user(processes)
    key, blob = f"big-{uuid.uuid4().hex}", "y" * (3 * 1024 * 1024 + 512 * 1024)
    assert call(processes.gateway, "POST", "/api/write/", {"data": {key: {"blob": blob}}}, token=token).status == 201
    read = call(processes.gateway, "POST", "/api/read/", {"keys": [key]}, token=token)
    assert assert_shape(read, 200, {"data": dict})["data"][key]["blob"] == blob


def test_depth_limit_through_http_is_400_never_5xx(processes):
    _, token = new_user(processes)

    def nested(depth):
        value = 1
        for _ in range(depth):
            value = {"k": value}
        return value

    ok, deep, very_deep, deepest_read = (f"d{n}-{uuid.uuid4().hex}" for n in (32, 33, 80, 98))
    assert call(processes.gateway, "POST", "/api/write/", {"data": {ok: nested(32)}}, token=token).status == 201
    assert call(processes.gateway, "POST", "/api/read/", {"keys": [ok]}, token=token).body == {"data": {ok: nested(32)}}
    for key, depth in ((deep, 33), (very_deep, 80), (deepest_read, 98)):
        reply = call(processes.gateway, "POST", "/api/write/", {"data": {key: nested(depth)}}, token=token)
        message = assert_shape(reply, 400, MESSAGE)["message"]
        # Past protobuf's own 100 levels the value does not even parse: the text says both.
        assert message.startswith(f"Incorrect value of the key {key} (it is ")
        assert "nested deeper than 32 levels" in message
    # Past the transcoder's JSON parser's 100 levels (the request's own two included: a
    # value 99 deep) the gateway refuses the body before kv_svc sees it: still a rule of
    # well-formed JSON, so 400, not 422.
    deepest = [f"d{depth}-{uuid.uuid4().hex}" for depth in (99, 128)]
    for key, depth in zip(deepest, (99, 128), strict=True):
        reply = call(processes.gateway, "POST", "/api/write/", {"data": {key: nested(depth)}}, token=token)
        assert assert_shape(reply, 400, MESSAGE)["message"] == (
            "Incorrect value of a key (it is nested deeper than 32 levels of objects/arrays)"
        )
    absent = call(processes.gateway, "POST", "/api/read/", {"keys": [deep, very_deep, *deepest]}, token=token)
    assert assert_shape(absent, 400, MESSAGE)["message"].startswith("These keys don't exist: ")
    # The transcoder's words only count as its own: quoted from a client's wrong-typed
    # member, they are still a wrong structure.
    quoted = {"data": "Message too deep. Max recursion depth reached"}
    reply = call(processes.gateway, "POST", "/api/write/", quoted, token=token)
    assert assert_shape(reply, 422, MESSAGE)["message"].startswith("Incorrect request structure: data: ")
    # Only a Write carries a value: a Read's deep `keys` is a wrong type, and stays 422.
    deep_keys = {"keys": [nested(0)]}
    for _ in range(120):
        deep_keys = {"keys": [deep_keys["keys"]]}
    reply = call(processes.gateway, "POST", "/api/read/", deep_keys, token=token)
    assert assert_shape(reply, 422, MESSAGE)["message"].startswith("Incorrect request structure: Message too deep")


def test_native_grpc_shares_the_gateway_port(processes):
    login, _ = new_user(processes)
    protoset = ["-protoset", "envoy/tkv.pb"]
    answer = grpcurl_ok(
        *protoset, processes.gateway, "tkv.auth.v1.AuthService/Login", data={"login": login, "password": PASSWORD}
    )
    assert answer["message"].startswith("You have been successfully authenticated (the token expires at ")
    error = grpcurl_error(*protoset, processes.gateway, "tkv.kv.v1.KeyValueService/Read", data={"keys": ["a"]})
    assert (error["code"], error["message"]) == (
        16,
        "You are not authorized! Please, sign in or sign up "
        "(missing access token: send the header `authorization: Bearer <token>`)",
    )


def test_upstream_down_is_503_json_and_grpc_unavailable(tmp_path):
    stack = Stack(tmp_path / "no-upstreams")  # Envoy only: nothing listens on the service ports
    gateway = envoy(stack, upstreams_up=False).start()
    try:
        address = f"127.0.0.1:{stack.gateway_port}"
        reply = call(address, "POST", "/api/login/", {"login": "a", "password": "b"})
        assert assert_shape(reply, 503, MESSAGE)["message"] in (
            "no healthy upstream",
            "upstream connect error or disconnect/reset before headers. reset reason: remote connection failure",
        )
        error = grpcurl_error(
            "-protoset", "envoy/tkv.pb", address, "tkv.auth.v1.AuthService/Login", data={"login": "a", "password": "b"}
        )
        assert error["code"] == 14 and not error["message"].startswith("{")
    finally:
        gateway.stop()
