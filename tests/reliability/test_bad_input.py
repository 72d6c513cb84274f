"""Bad and arbitrary input: property-based round trips, never an INTERNAL or a 5xx, and a
schemathesis pass over the HTTP API from its OpenAPI description."""

import json
import math
import re
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import grpc
import pytest
from google.protobuf import json_format, struct_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.http_client import assert_shape, call
from tests.stack import ROOT, Stack, require_binary, start_all, stop_all
from tests.status_details import reason
from tkv.auth.v1 import auth_pb2, auth_pb2_grpc
from tkv.kv.v1 import kv_pb2, kv_pb2_grpc
from tkv.kv.v2 import kv_pb2 as v2
from tkv.kv.v2 import kv_pb2_grpc as v2_grpc

pytestmark = pytest.mark.slow
HYPOTHESIS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# JSON values within the documented limits: numbers exact as IEEE doubles, finite.
scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False)
strings = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
json_values = st.recursive(
    scalars | strings,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(strings, inner, max_size=4),
    max_leaves=25,
)
keys = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=60)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    stack = Stack(tmp_path_factory.mktemp("bad-input"))
    processes = start_all(stack)
    auth_channel = grpc.insecure_channel(f"127.0.0.1:{stack.auth_port}")
    kv_channel = grpc.insecure_channel(f"127.0.0.1:{stack.kv_port}")
    auth = auth_pb2_grpc.AuthServiceStub(auth_channel)
    login = f"Prop{uuid.uuid4().hex[:8]}"
    auth.Register(auth_pb2.RegisterRequest(login=login, password="Secr3t!pass", name="Anna", surname="Smith"))
    token = auth.Login(auth_pb2.LoginRequest(login=login, password="Secr3t!pass")).token
    yield type(
        "Live",
        (),
        {
            "stack": stack,
            "auth": auth,
            "kv": kv_pb2_grpc.KeyValueServiceStub(kv_channel),
            "kv2": v2_grpc.KeyValueServiceStub(kv_channel),
            "kv_channel": kv_channel,
            "token": token,
            "gateway": f"127.0.0.1:{stack.gateway_port}",
            "md": (("authorization", f"Bearer {token}"),),
        },
    )
    auth_channel.close()
    kv_channel.close()
    stop_all(processes)


def same(a, b) -> bool:
    """JSON equality where numbers compare as doubles (2 == 2.0)."""
    if isinstance(a, (int, float)) and not isinstance(a, bool) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=0, abs_tol=0) or a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b and type(a) is type(b)


@HYPOTHESIS
@given(value=json_values, key=keys)
def test_any_json_value_round_trips_exactly_over_grpc(live, value, key):
    key = f"{uuid.uuid4().hex}:{key}"
    request = json_format.ParseDict({"data": {key: value}}, kv_pb2.WriteRequest())
    assert live.kv.Write(request, metadata=live.md).status == "success"
    read = live.kv.Read(kv_pb2.ReadRequest(keys=[key]), metadata=live.md)
    assert same(json_format.MessageToDict(read.data)[key], value)


@HYPOTHESIS
@given(value=json_values, key=keys)
def test_any_json_value_round_trips_exactly_over_http(live, value, key):
    key = f"{uuid.uuid4().hex}:{key}"
    written = call(live.gateway, "POST", "/api/write/", {"data": {key: value}}, token=live.token)
    assert (written.status, written.body) == (201, {"status": "success"})
    read = call(live.gateway, "POST", "/api/read/", {"keys": [key]}, token=live.token)
    assert read.status == 200 and same(read.body["data"][key], value)


arbitrary_json = st.recursive(
    scalars | strings,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(strings, inner, max_size=3),
    max_leaves=10,
)
field_names = st.sampled_from(["login", "password", "name", "surname", "keys", "data", "extra"])
bodies = st.dictionaries(field_names, arbitrary_json, max_size=5) | arbitrary_json


@HYPOTHESIS
@given(route=st.sampled_from(["/api/register/", "/api/login/", "/api/read/", "/api/write/"]), body=bodies)
def test_arbitrary_http_bodies_never_get_a_5xx(live, route, body):
    reply = call(live.gateway, "POST", route, body, token=live.token)
    assert reply.status < 500, (reply.status, reply.raw[:300])
    assert reply.headers["content-type"].startswith("application/json")


@HYPOTHESIS
@given(
    method=st.sampled_from(
        [
            "/tkv.auth.v1.AuthService/Register",
            "/tkv.auth.v1.AuthService/Login",
            "/tkv.kv.v1.KeyValueService/Read",
            "/tkv.kv.v1.KeyValueService/Write",
        ]
    ),
    payload=st.binary(max_size=200),
)
def test_arbitrary_bytes_never_get_internal(live, method, payload):
    channel = live.kv_channel if ".kv." in method else grpc.insecure_channel(f"127.0.0.1:{live.stack.auth_port}")
    rpc = channel.unary_unary(method, request_serializer=lambda b: b, response_deserializer=lambda b: b)
    try:
        rpc(payload, metadata=live.md, timeout=10)
    except grpc.RpcError as error:
        assert error.code() not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), error.details()


TOO_LONG = "Incorrect keys: a key should be no more than 1024 bytes of UTF-8"
ONE = struct_pb2.Value(number_value=1)


def shared_keys_under(live, prefix: str) -> list[str]:
    """The keys stored in `shared` under `prefix`, read back through v2's listing."""
    listed = live.kv2.ListPairs(
        v2.ListPairsRequest(namespace="shared", prefix=prefix, keys_only=True), metadata=live.md
    )
    return [pair.key for pair in listed.pairs]


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        ("nul\u0000key", "Incorrect keys: a key cannot contain NUL (U+0000) (key {excerpt})"),
        ("", 'Incorrect keys: a key cannot be empty (key "")'),
        ("k" * 1025, TOO_LONG + " (key {excerpt}: 1062 bytes)"),
    ],
    ids=["nul", "empty", "too-long"],
)
def test_bad_keys_are_precise_400s_and_write_nothing(live, bad, expected):
    tag = f"bad-{uuid.uuid4().hex}-"  # 37 characters
    good, bad = f"{tag}good", (tag + bad if bad else bad)
    reply = call(live.gateway, "POST", "/api/write/", {"data": {good: 1, bad: 2}}, token=live.token)
    # A key in a message: its first 40 characters, then "...".
    assert assert_shape(reply, 400, {"message": str}) == {"message": expected.format(excerpt=bad[:40] + "...")}
    # Nothing of the batch was written: not the good pair, not the bad one.
    read = call(live.gateway, "POST", "/api/read/", {"keys": [good]}, token=live.token)
    assert assert_shape(read, 400, {"message": str}) == {"message": f"These keys don't exist: {good}"}
    assert shared_keys_under(live, tag) == []


def test_a_key_is_limited_in_bytes_of_utf8_not_in_characters(live):
    tag = f"utf8-{uuid.uuid4().hex}-"  # 38 bytes
    fits = tag + "é" * ((1024 - len(tag)) // 2)  # 1024 bytes, 531 characters
    over = fits + "é"  # 1026 bytes, 532 characters: under 1024 characters, over 1024 bytes
    assert (len(fits.encode()), len(over.encode())) == (1024, 1026)
    refused = call(live.gateway, "POST", "/api/write/", {"data": {over: 1}}, token=live.token)
    assert assert_shape(refused, 400, {"message": str}) == {"message": f"{TOO_LONG} (key {over[:40]}...: 1026 bytes)"}
    with pytest.raises(grpc.RpcError) as error:
        live.kv2.PutPair(v2.PutPairRequest(namespace="me", key=over, value=ONE), metadata=live.md)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details() == f"{TOO_LONG} (key: 1026 bytes)"
    assert shared_keys_under(live, tag) == []
    written = call(live.gateway, "POST", "/api/write/", {"data": {fits: 1}}, token=live.token)
    assert (written.status, written.body) == (201, {"status": "success"})
    assert shared_keys_under(live, tag) == [fits]


def test_v2_refuses_a_key_over_1024_bytes_and_writes_nothing_of_the_batch(live):
    tag = f"long-{uuid.uuid4().hex}-"
    longest, over = tag + "k" * (1024 - len(tag)), tag + "k" * (1025 - len(tag))
    batch = v2.BatchPutPairsRequest(
        namespace="me", pairs=[v2.PairToPut(key=f"{tag}good", value=ONE), v2.PairToPut(key=over, value=ONE)]
    )
    with pytest.raises(grpc.RpcError) as error:
        live.kv2.BatchPutPairs(batch, metadata=live.md)
    assert (error.value.code(), reason(error.value)) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PAIRS")
    assert error.value.details() == f"{TOO_LONG} (pairs[1].key: 1025 bytes)"
    for request in (
        v2.BatchGetPairsRequest(namespace="me", keys=[over]),
        v2.ListPairsRequest(namespace="me", prefix=over),
    ):
        method = live.kv2.BatchGetPairs if isinstance(request, v2.BatchGetPairsRequest) else live.kv2.ListPairs
        with pytest.raises(grpc.RpcError) as error:
            method(request, metadata=live.md)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error.value.details().startswith(f"{TOO_LONG} ("), error.value.details()
    listed = live.kv2.ListPairs(v2.ListPairsRequest(namespace="me", prefix=tag), metadata=live.md)
    assert list(listed.pairs) == []
    # 1024 bytes is allowed.
    live.kv2.PutPair(v2.PutPairRequest(namespace="me", key=longest, value=ONE), metadata=live.md)
    listed = live.kv2.ListPairs(v2.ListPairsRequest(namespace="me", prefix=tag, keys_only=True), metadata=live.md)
    assert [pair.key for pair in listed.pairs] == [longest]


def test_batches_hold_at_most_1000_keys_in_v1_and_v2(live):
    tag = f"many-{uuid.uuid4().hex}-"
    keys = [f"{tag}{i:04}" for i in range(1001)]
    too_many = "Incorrect keys: you cannot pass more than 1000 keys at once (got 1001)"
    for call_ in (
        lambda: live.kv.Write(
            json_format.ParseDict({"data": dict.fromkeys(keys, 1)}, kv_pb2.WriteRequest()), metadata=live.md
        ),
        lambda: live.kv.Read(kv_pb2.ReadRequest(keys=keys), metadata=live.md),
        lambda: live.kv2.BatchPutPairs(
            v2.BatchPutPairsRequest(namespace="me", pairs=[v2.PairToPut(key=k, value=ONE) for k in keys]),
            metadata=live.md,
        ),
        lambda: live.kv2.BatchGetPairs(v2.BatchGetPairsRequest(namespace="me", keys=keys), metadata=live.md),
        lambda: live.kv2.BatchDeletePairs(v2.BatchDeletePairsRequest(namespace="me", keys=keys), metadata=live.md),
    ):
        with pytest.raises(grpc.RpcError) as error:
            call_()
        assert (error.value.code(), error.value.details()) == (grpc.StatusCode.INVALID_ARGUMENT, too_many)
    assert shared_keys_under(live, tag) == []
    listed = live.kv2.ListPairs(v2.ListPairsRequest(namespace="me", prefix=tag, keys_only=True), metadata=live.md)
    assert list(listed.pairs) == []
    # 1000 is allowed, both ways.
    batch = v2.BatchPutPairsRequest(namespace="me", pairs=[v2.PairToPut(key=k, value=ONE) for k in keys[:1000]])
    live.kv2.BatchPutPairs(batch, metadata=live.md)
    found = live.kv2.BatchGetPairs(v2.BatchGetPairsRequest(namespace="me", keys=keys[:1000]), metadata=live.md)
    assert len(found.pairs) == 1000 and list(found.missing_keys) == []


def test_pages_hold_the_default_100_and_at_most_1000_pairs(live):
    tag = f"page-{uuid.uuid4().hex}-"
    keys = [f"{tag}{i:04}" for i in range(1001)]
    for batch in (keys[:1000], keys[1000:]):
        request = v2.BatchPutPairsRequest(namespace="me", pairs=[v2.PairToPut(key=k, value=ONE) for k in batch])
        live.kv2.BatchPutPairs(request, metadata=live.md)

    def page(**fields):
        request = v2.ListPairsRequest(namespace="me", prefix=tag, keys_only=True, **fields)
        listed = live.kv2.ListPairs(request, metadata=live.md)
        return [pair.key for pair in listed.pairs], listed.next_page_token

    default, token = page()
    assert default == keys[:100] and token
    largest, token = page(page_size=5000)  # docs/api.md, "Listing": larger than 1000 means 1000
    assert largest == keys[:1000] and token
    rest, token = page(page_size=5000, page_token=token)
    assert rest == keys[1000:] and token == ""


@pytest.mark.parametrize(
    ("namespace", "shown"),
    [
        ("me/x", "me/x"),
        ("shared2!", "shared2!"),
        ("a" * 65, "a" * 64 + "..."),
        ("x", "x"),
        ("", '""'),
    ],
)
def test_a_namespace_is_me_shared_or_a_login_of_2_to_64_letters_and_digits(live, namespace, shown):
    with pytest.raises(grpc.RpcError) as error:
        live.kv2.ListPairs(v2.ListPairsRequest(namespace=namespace), metadata=live.md)
    assert (error.value.code(), reason(error.value)) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    assert error.value.details() == (
        f"Incorrect namespace: use me, shared or a login (2-64 Latin letters and digits), got {shown}"
    )


def test_a_body_announced_over_the_limit_is_413_before_it_is_sent(live):
    # The gateway answers from Content-Length alone (4 MiB by default, TKV_MAX_REQUEST_BYTES):
    # the client has sent 64 KiB of its body and is still sending when the answer comes.
    tag = f"big-{uuid.uuid4().hex}"
    length = 4 * 1024 * 1024 + 1
    host, port = live.gateway.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            f"POST /api/write/ HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            f"authorization: Bearer {live.token}\r\ncontent-length: {length}\r\n\r\n".encode()
            + f'{{"data": {{"{tag}": "'.encode()
            + b"x" * 65536
        )
        try:
            answer = sock.recv(65536)
        except TimeoutError:
            pytest.fail("no answer in 10 s: the gateway waits for the rest of a body it must refuse")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 "), head
    assert json.loads(body) == {"message": f"request body is {length} bytes; the limit is {4 * 1024 * 1024}"}
    assert shared_keys_under(live, tag) == []


def test_invalid_utf8_is_rejected_over_grpc_and_http(live):
    # Write with a key of invalid UTF-8 on the wire (the WriteRequestView keeps key bytes).
    entry = b"\x0a\x02\xff\xfe" + b"\x12\x02\x20\x01"  # key=b"\xff\xfe", value=Value{bool_value: true}
    raw = b"\x0a" + bytes([len(entry) + 2]) + b"\x0a" + bytes([len(entry)]) + entry
    rpc = live.kv_channel.unary_unary(
        "/tkv.kv.v1.KeyValueService/Write", request_serializer=lambda b: b, response_deserializer=lambda b: b
    )
    with pytest.raises(grpc.RpcError) as error:
        rpc(raw, metadata=live.md, timeout=10)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details() == "Incorrect keys: a key should be valid UTF-8 (data[0])"
    # JSON is UTF-8: such a body is not JSON at all (422, from the gateway).
    reply = call(live.gateway, "POST", "/api/write/", raw=b'{"data": {"\xff\xfe": 1}}', token=live.token)
    assert reply.status == 422 and reply.body["message"].startswith("Incorrect request structure: ")


def test_schemathesis_finds_no_server_error(live, tmp_path):
    spec = subprocess.run(
        [sys.executable, "scripts/gen_protos.py", "--openapi", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    result = subprocess.run(
        [
            require_binary("schemathesis"),
            "run",
            spec,
            "--url",
            f"http://{live.gateway}",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "40",
            "--header",
            f"Authorization: Bearer {live.token}",
            "--generation-deterministic",
            # A watch is a stream with no end: not a request and answer to judge.
            "--exclude-path-regex",
            ":watch$",
            "--request-timeout",
            "10",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    generated, passed = map(int, re.search(r"(\d+) generated, (\d+) passed", output).groups())
    assert generated == passed and generated >= 200, output[-2000:]
    paths = json.loads(Path(spec).read_text())["paths"]
    operations = sum(1 for methods in paths.values() for method in methods if method != "parameters")
    assert operations == 21  # v1: 6; kv v2: 12 (ListGrants twice); the account calls: 3
    # Every route of the description was exercised, but Watch (excluded above).
    assert f"Tested: {operations - 1}" in output, output[-2000:]
