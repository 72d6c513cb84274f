"""Watch and sharing through the real Envoy (docs/api.md, "Watch", "Sharing"): a watch streams
over HTTP as changes happen (curl -N sees each event while the stream is open), ends within
1 s of logout, token expiry or the loss of its grant with the status in the trailers, and
three users share a namespace over HTTP and gRPC."""

from __future__ import annotations

import subprocess
import threading
import time
import urllib.parse

import grpc
import jwt
from google.protobuf import struct_pb2

from tests.e2e.http_client import Stream, call
from tests.e2e.test_http_api_v2 import sign_in
from tests.stack import require_binary
from tests.tokens_for_tests import sign
from tkv.kv.v2 import kv_pb2 as v2
from tkv.kv.v2 import kv_pb2_grpc as v2_grpc


def pair_path(namespace: str, key: str) -> str:
    return f"/v2/namespaces/{namespace}/pairs/{urllib.parse.quote(key, safe='')}"


def curl_watch(gateway: str, token: str, namespace: str, body: str, *, raw: bool = False) -> subprocess.Popen:
    """`curl -N` on the watch route; with `raw`, the chunked body as sent, trailers (the
    stream's final status) included."""
    return subprocess.Popen(
        [
            require_binary("curl"),
            "-sN",
            *(["--raw"] if raw else []),
            "-X",
            "POST",
            f"http://{gateway}/v2/namespaces/{namespace}/pairs:watch",
            "-H",
            f"Authorization: Bearer {token}",
            "-d",
            body,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_line(process: subprocess.Popen, timeout: float = 5.0) -> str:
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(process.stdout.readline()))
    reader.start()
    reader.join(timeout)
    assert lines, f"no line from curl within {timeout} s"
    return lines[0]


def ends_within(process: subprocess.Popen, seconds: float) -> tuple[float, str]:
    """Waits for curl to end; returns how long it took and the rest of its output."""
    started = time.monotonic()
    try:
        stdout, _ = process.communicate(timeout=seconds + 5)
    finally:
        process.kill()
    return time.monotonic() - started, stdout


def test_curl_sees_each_event_while_the_stream_is_open(processes):
    login, token = sign_in(processes.gateway)
    watch = curl_watch(processes.gateway, token, "me", '{"prefix": "app/"}')
    try:
        assert '"revision"' in read_line(watch)  # the watch is open
        put = call(processes.gateway, "PUT", pair_path("me", "app/color"), "blue", token=token)
        assert put.status == 200, put.raw
        line = read_line(watch)
        assert '"type":"PUT"' in line and '"key":"app/color"' in line and '"value":"blue"' in line, line
        assert watch.poll() is None  # still streaming: the event did not wait for the end
        call(processes.gateway, "DELETE", pair_path("me", "app/color"), token=token)
        assert '"type":"DELETE"' in read_line(watch)
        call(processes.gateway, "PUT", pair_path("me", "app/session") + "?ttl=1s", {"user": login}, token=token)
        assert '"type":"PUT"' in read_line(watch)
        assert '"type":"EXPIRE"' in read_line(watch, timeout=5)
    finally:
        watch.kill()
        watch.communicate()


def test_logout_ends_an_http_watch_within_a_second_with_the_status_in_trailers(processes):
    _, token = sign_in(processes.gateway)
    watch = curl_watch(processes.gateway, token, "me", "{}", raw=True)
    while '"revision"' not in read_line(watch):  # chunk sizes come first in a raw body
        pass
    assert call(processes.gateway, "GET", "/api/logout", token=token).status == 200
    took, rest = ends_within(watch, 1.0)
    assert took < 1.0
    assert "grpc-status: 16" in rest and "access token has been revoked" in rest, rest


def test_token_expiry_ends_an_http_watch_within_a_second(processes):
    _, token = sign_in(processes.gateway)
    claims = jwt.decode(token, options={"verify_signature": False})
    expires_at = int(time.time()) + 2
    short = sign(processes.stack.data_dir, **{**claims, "exp": expires_at, "iat": int(time.time())})
    with Stream(processes.gateway, "/v2/namespaces/me/pairs:watch", {}, short) as stream:
        assert stream.status == 200 and "revision" in stream.next_message()
        assert stream.next_message() is None  # the end, without a message after it
    assert time.time() - expires_at < 1.0


def test_three_users_share_a_namespace_over_http_and_grpc(processes):
    gateway = processes.gateway
    owner, owner_token = sign_in(gateway)
    reader, reader_token = sign_in(gateway)
    writer, writer_token = sign_in(gateway)
    grants = "/v2/namespaces/me/grants"
    given = call(gateway, "POST", grants, {"grantee": reader, "role": "READER", "prefix": "app/"}, token=owner_token)
    assert given.status == 200 and given.body["role"] == "READER", given.raw
    assert call(gateway, "POST", grants, {"grantee": writer, "role": "WRITER"}, token=owner_token).status == 200
    listed = call(gateway, "GET", grants, token=owner_token).body["grants"]
    assert sorted((g["grantee"], g["role"], g.get("prefix", "")) for g in listed) == sorted(
        [(reader, "READER", "app/"), (writer, "WRITER", "")]
    )
    received = call(gateway, "GET", "/v2/grants/received", token=reader_token).body["grants"]
    assert [(g["namespace"], g["prefix"]) for g in received] == [(owner.lower(), "app/")]

    # The reader watches over HTTP what the writer writes over gRPC through the gateway.
    with Stream(gateway, f"/v2/namespaces/{owner}/pairs:watch", {"prefix": "app/"}, reader_token) as stream:
        assert stream.status == 200 and "revision" in stream.next_message()
        with grpc.insecure_channel(gateway) as channel:
            stub = v2_grpc.KeyValueServiceStub(channel)
            md = [("authorization", f"Bearer {writer_token}")]
            value = struct_pb2.Value(string_value="by the writer")
            written = stub.PutPair(
                v2.PutPairRequest(namespace=owner, key="app/x", value=value), metadata=md, timeout=10
            )
            event = stream.next_message()["events"][0]
            assert (event["type"], event["pair"]["key"], event["pair"]["owner"]) == ("PUT", "app/x", writer)
            assert int(event["pair"]["version"]) == written.revision
            # The reader reads under the prefix, and nothing else; never writes.
            assert call(gateway, "GET", pair_path(owner, "app/x"), token=reader_token).body["value"] == "by the writer"
            stub.PutPair(v2.PutPairRequest(namespace=owner, key="other", value=value), metadata=md, timeout=10)
            denied = call(gateway, "GET", pair_path(owner, "other"), token=reader_token)
            assert denied.status == 403 and denied.body["details"][0]["reason"] == "NOT_GRANTED", denied.raw
            assert call(gateway, "PUT", pair_path(owner, "app/x"), 1, token=reader_token).status == 403
            # A grantee cannot grant further.
            assert (
                call(gateway, "POST", f"/v2/namespaces/{owner}/grants", {"grantee": reader, "role": "WRITER"},
                     token=writer_token).status == 403
            )  # fmt: skip

            # Revoked: the reader's watch ends within 1 s and their next call is refused.
            started = time.monotonic()
            revoke = call(gateway, "DELETE", f"{grants}/{reader}?prefix=app%2F", token=owner_token)
            assert revoke.status == 200, revoke.raw
            assert stream.next_message() is None
            assert time.monotonic() - started < 1.0
    assert call(gateway, "GET", pair_path(owner, "app/x"), token=reader_token).status == 403
    with grpc.insecure_channel(gateway) as channel:
        stub = v2_grpc.KeyValueServiceStub(channel)
        with_grant = stub.GetPair(
            v2.GetPairRequest(namespace=owner, key="other"), metadata=[("authorization", f"Bearer {writer_token}")]
        )
        assert with_grant.value.string_value == "by the writer"
