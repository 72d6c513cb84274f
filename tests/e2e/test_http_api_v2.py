"""API v2 through the real Envoy, over HTTP/JSON and native gRPC (docs/api.md, "v2"): the access
matrix, keys with every awkward character through the single-key routes, and errors as
the JSON google.rpc.Status with the standard status mapping."""

from __future__ import annotations

import itertools
import json
import urllib.parse
import uuid
from pathlib import Path

import grpc
import pytest
from google.protobuf import json_format, struct_pb2

from tests.e2e.http_client import Reply, Stream, call
from tkv.kv.v2 import kv_pb2 as v2
from tkv.kv.v2 import kv_pb2_grpc as v2_grpc

PASSWORD = "Secr3t!pass"


def sign_in(gateway: str) -> tuple[str, str]:
    login = "u" + uuid.uuid4().hex[:12]
    body = {"login": login, "password": PASSWORD, "name": "Anna", "surname": "Smith"}
    assert call(gateway, "POST", "/api/register", body).status == 201
    return login, call(gateway, "POST", "/api/login", {"login": login, "password": PASSWORD}).body["token"]


def pairs_path(namespace: str, key: str | None = None) -> str:
    path = f"/v2/namespaces/{namespace}/pairs"
    return path if key is None else f"{path}/{urllib.parse.quote(key, safe='')}"


@pytest.fixture(scope="module")
def users(processes):
    """Two users: A owns the pairs the matrix acts on, B does not; C is who A's grants go to."""
    return {"A": sign_in(processes.gateway), "B": sign_in(processes.gateway), "C": sign_in(processes.gateway)}


def grants_path(namespace: str, grantee: str | None = None) -> str:
    path = f"/v2/namespaces/{namespace}/grants"
    return path if grantee is None else f"{path}/{grantee}"


# Every v2 call, as (HTTP method, path, body) and as a gRPC call, on one existing pair (and
# a grant to C on the prefix that is the pair's key).
def http_request(name: str, namespace: str, key: str, grantee: str = ""):
    prefix = urllib.parse.quote(key, safe="")
    return {
        "GetPair": ("GET", pairs_path(namespace, key), None),
        "BatchGetPairs": ("POST", pairs_path(namespace) + ":batchGet", {"keys": [key]}),
        "PutPair": ("PUT", pairs_path(namespace, key), {"new": True}),
        "BatchPutPairs": ("POST", pairs_path(namespace) + ":batchPut", {"pairs": [{"key": key, "value": 2}]}),
        "DeletePair": ("DELETE", pairs_path(namespace, key), None),
        "BatchDeletePairs": ("POST", pairs_path(namespace) + ":batchDelete", {"keys": [key]}),
        "ListPairs": ("GET", pairs_path(namespace) + "?prefix=" + urllib.parse.quote(key, safe=""), None),
        "Watch": ("POST", pairs_path(namespace) + ":watch", {"key": key}),
        "CreateGrant": ("POST", grants_path(namespace), {"grantee": grantee, "role": "WRITER", "prefix": key}),
        "ListGrants": ("GET", grants_path(namespace), None),
        "DeleteGrant": ("DELETE", grants_path(namespace, grantee) + "?prefix=" + prefix, None),
    }[name]


def grpc_request(name: str, namespace: str, key: str, grantee: str = ""):
    value = struct_pb2.Value(number_value=2)
    return {
        "GetPair": v2.GetPairRequest(namespace=namespace, key=key),
        "BatchGetPairs": v2.BatchGetPairsRequest(namespace=namespace, keys=[key]),
        "PutPair": v2.PutPairRequest(namespace=namespace, key=key, value=value),
        "BatchPutPairs": v2.BatchPutPairsRequest(namespace=namespace, pairs=[v2.PairToPut(key=key, value=value)]),
        "DeletePair": v2.DeletePairRequest(namespace=namespace, key=key),
        "BatchDeletePairs": v2.BatchDeletePairsRequest(namespace=namespace, keys=[key]),
        "ListPairs": v2.ListPairsRequest(namespace=namespace, prefix=key),
        "Watch": v2.WatchRequest(namespace=namespace, key=key),
        "CreateGrant": v2.CreateGrantRequest(namespace=namespace, grantee=grantee, role=v2.WRITER, prefix=key),
        "ListGrants": v2.ListGrantsRequest(namespace=namespace),
        "DeleteGrant": v2.DeleteGrantRequest(namespace=namespace, grantee=grantee, prefix=key),
    }[name]


PAIR_CALLS = ["GetPair", "BatchGetPairs", "PutPair", "BatchPutPairs", "DeletePair", "BatchDeletePairs", "ListPairs"]
GRANT_CALLS = ["CreateGrant", "ListGrants", "DeleteGrant"]
CALLS = [*PAIR_CALLS, "Watch", *GRANT_CALLS]
READS = {"GetPair", "BatchGetPairs", "ListPairs", "Watch"}
# (namespace the pair is in, who calls) -> the calls allowed. A's namespace is named by A's
# login (in upper case: any letter case names it) for either caller.
ALLOWED = {
    ("own", "A"): set(CALLS),
    ("own", "B"): set(),  # another user's namespace: every call denied
    ("shared", "A"): set(CALLS) - set(GRANT_CALLS),  # the pair's owner; `shared` is nobody's to share
    ("shared", "B"): READS,  # anyone reads; only the owner updates or deletes
}
MATRIX = list(itertools.product(CALLS, ["own", "shared"], ["A", "B"], ["http", "grpc"]))


def watch_opens(transport: str, gateway: str, namespace: str, key: str, token: str):
    """Opens a watch of `key`; None when its first (progress) message came, else the error."""
    if transport == "http":
        _, path, body = http_request("Watch", namespace, key)
        with Stream(gateway, path, body, token) as stream:
            if stream.status == HTTP_OK:
                assert "revision" in stream.next_message()
                return None
            return Reply(stream.status, dict(stream.response.getheaders()), stream.response.read())
    with grpc.insecure_channel(gateway) as channel:
        stream = v2_grpc.KeyValueServiceStub(channel).Watch(
            grpc_request("Watch", namespace, key), metadata=[("authorization", f"Bearer {token}")], timeout=10
        )
        try:
            next(stream)
            return None
        except grpc.RpcError as error:
            return error
        finally:
            stream.cancel()


HTTP_OK = 200


def seed(gateway: str, token: str, namespace: str) -> str:
    key = f"matrix/{uuid.uuid4().hex[:10]}"
    reply = call(gateway, "PUT", pairs_path(namespace, key), {"seed": 1}, token=token)
    assert reply.status == 200, reply.raw
    return key


def as_owner(gateway: str, token: str, path: str) -> tuple[int, object]:
    """What the owner reads at `path` (their pair, or the grants they gave): status and body."""
    reply = call(gateway, "GET", path, token=token)
    return reply.status, reply.body


@pytest.mark.parametrize(("name", "where", "caller", "transport"), MATRIX)
def test_access_matrix(processes, users, name, where, caller, transport):
    owner_login, owner_token = users["A"]
    _, token = users[caller]
    grantee, _ = users["C"]
    key = seed(processes.gateway, owner_token, "me" if where == "own" else "shared")
    if where == "own":  # for DeleteGrant to delete
        grant = {"grantee": grantee, "role": "READER", "prefix": key}
        assert call(processes.gateway, "POST", grants_path("me"), grant, token=owner_token).status == HTTP_OK
    namespace = owner_login.upper() if where == "own" else "shared"
    allowed = name in ALLOWED[(where, caller)]
    # What a denied call must leave as it was: the pair (value, version, times), and the
    # grants of the owner's namespace.
    watched = [pairs_path("me" if where == "own" else "shared", key), grants_path("me")]
    before = [as_owner(processes.gateway, owner_token, path) for path in watched]
    assert [status for status, _ in before] == [HTTP_OK, HTTP_OK], before
    if name == "Watch":
        error = watch_opens(transport, processes.gateway, namespace, key, token)
        if allowed:
            assert error is None
        elif transport == "http":
            assert error.status == 403 and error.body["code"] == 7, error.raw
        else:
            assert error.code() == grpc.StatusCode.PERMISSION_DENIED
        return
    if transport == "http":
        method, path, body = http_request(name, namespace, key, grantee)
        reply = call(processes.gateway, method, path, body, token=token)
        if allowed:
            assert reply.status == HTTP_OK, reply.raw
        else:
            assert reply.status == 403, reply.raw
            assert reply.body["code"] == grpc.StatusCode.PERMISSION_DENIED.value[0]
            info = reply.body["details"][0]
            assert info["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"
            expected = "NOT_OWNER" if where == "shared" and name in PAIR_CALLS else "NAMESPACE_DENIED"
            assert info["reason"] == expected
            after = [as_owner(processes.gateway, owner_token, path) for path in watched]
            assert after == before, f"a denied {name} changed what it was denied"
    else:
        with grpc.insecure_channel(processes.gateway) as channel:
            stub = v2_grpc.KeyValueServiceStub(channel)
            method = getattr(stub, name)
            request = grpc_request(name, namespace, key, grantee)
            if allowed:
                method(request, metadata=[("authorization", f"Bearer {token}")], timeout=10)
            else:
                with pytest.raises(grpc.RpcError) as error:
                    method(request, metadata=[("authorization", f"Bearer {token}")], timeout=10)
                assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED
                after = [as_owner(processes.gateway, owner_token, path) for path in watched]
                assert after == before, f"a denied {name} changed what it was denied"


def test_the_matrix_covers_every_call_of_the_service():
    service = v2.DESCRIPTOR.services_by_name["KeyValueService"]
    assert set(CALLS) == {method.name for method in service.methods}
    assert len(MATRIX) == 88


AWKWARD_KEYS = [
    "a/b/c",
    "/leading and trailing/",
    "100% sure",
    "what?",
    "#hash",
    "a+b=c&d",
    "colon:batchGet",
    "ключ ü 鍵 🙂",
    "tab\tand\nnewline",
    'quote"back\\slash',
    "..",
    ".",
    "%2F already encoded",
]


@pytest.mark.parametrize("key", AWKWARD_KEYS)
def test_any_key_round_trips_through_the_single_key_routes(processes, users, key):
    _, token = users["A"]
    put = call(processes.gateway, "PUT", pairs_path("me", key), {"k": key}, token=token)
    assert put.status == 200, put.raw
    got = call(processes.gateway, "GET", pairs_path("me", key), token=token)
    assert got.status == 200, got.raw
    assert (got.body["key"], got.body["value"]) == (key, {"k": key})
    listed = call(
        processes.gateway, "GET", pairs_path("me") + "?prefix=" + urllib.parse.quote(key, safe=""), token=token
    )
    assert [pair["key"] for pair in listed.body["pairs"]] == [key]
    deleted = call(processes.gateway, "DELETE", pairs_path("me", key), token=token)
    assert deleted.status == 200, deleted.raw
    assert call(processes.gateway, "GET", pairs_path("me", key), token=token).status == 404


def test_errors_are_json_status_with_details_and_the_standard_http_status(processes, users):
    _, token = users["A"]
    key = seed(processes.gateway, token, "me")
    lost = call(processes.gateway, "PUT", pairs_path("me", key) + "?expected_version=0", 1, token=token)
    assert lost.status == 409
    assert lost.body["code"] == 10 and lost.body["message"] == f"These pairs do not have the expected version: {key}"
    failure = lost.body["details"][1]
    assert failure["@type"] == "type.googleapis.com/google.rpc.PreconditionFailure"
    assert failure["violations"][0]["subject"] == key
    missing = call(processes.gateway, "GET", pairs_path("me", "absent"), token=token)
    assert (missing.status, missing.body["code"], missing.body["details"][0]["reason"]) == (404, 5, "KEYS_NOT_FOUND")
    unauthenticated = call(processes.gateway, "GET", pairs_path("me", key))
    assert (unauthenticated.status, unauthenticated.body["code"]) == (401, 16)
    invalid = call(processes.gateway, "GET", pairs_path("me") + "?page_size=-1", token=token)
    assert (invalid.status, invalid.body["code"]) == (400, 3)
    assert invalid.body["details"][1]["@type"] == "type.googleapis.com/google.rpc.BadRequest"
    # Replies the gateway makes itself have the same shape.
    for reply, status, code in (
        (call(processes.gateway, "POST", pairs_path("me") + ":batchGet", raw=b"{", token=token), 400, 3),
        (call(processes.gateway, "GET", "/v2/nothing/here", token=token), 404, 5),
        (call(processes.gateway, "GET", pairs_path("me") + "?bogus=1", token=token), 400, 3),
    ):
        assert reply.status == status and reply.headers["content-type"] == "application/json", reply.raw
        assert reply.body["code"] == code and set(reply.body) == {"code", "message"}


def test_a_curl_style_session_put_with_ttl_list_in_pages_and_a_conditional_put_that_loses(processes, users):
    _, token = users["A"]
    prefix = f"session/{uuid.uuid4().hex[:8]}/"
    put = call(processes.gateway, "PUT", pairs_path("me", prefix + "a") + "?ttl=60s", {"n": 1}, token=token)
    assert put.status == 200 and "expire_time" in put.body, put.raw
    call(
        processes.gateway,
        "POST",
        pairs_path("me") + ":batchPut",
        {"pairs": [{"key": prefix + "b", "value": 2}]},
        token=token,
    )
    first = call(processes.gateway, "GET", pairs_path("me") + f"?prefix={prefix}&page_size=1", token=token).body
    token_param = urllib.parse.quote(first["next_page_token"], safe="")
    second = call(
        processes.gateway,
        "GET",
        pairs_path("me") + f"?prefix={prefix}&page_size=1&page_token={token_param}",
        token=token,
    ).body
    assert [p["key"] for p in first["pairs"] + second["pairs"]] == [prefix + "a", prefix + "b"]
    assert "next_page_token" not in second
    version = json_format.ParseDict(first["pairs"][0], v2.Pair()).version
    stale = call(
        processes.gateway, "PUT", pairs_path("me", prefix + "a") + f"?expected_version={version - 1}", 3, token=token
    )
    assert stale.status == 409


@pytest.mark.parametrize("body", [b"1", b"-2.5e3", b"true", b"null", b'"text"', b"[1,2]", b'{"a":{}}', b" 7 "])
def test_a_put_body_may_be_any_json_value(processes, users, body):
    # A bare number used to leave Envoy's transcoder waiting for more (http_api.lua).
    _, token = users["A"]
    key = f"body/{uuid.uuid4().hex[:8]}"
    put = call(processes.gateway, "PUT", pairs_path("me", key), raw=body, token=token)
    assert put.status == 200, put.raw
    got = call(processes.gateway, "GET", pairs_path("me", key), token=token)
    assert got.body["value"] == json.loads(body)


def test_the_account_calls_over_http(processes):
    gateway = processes.gateway
    login, token = sign_in(gateway)
    wrong = call(
        gateway, "POST", "/v2/account:changePassword", {"old_password": "x", "new_password": "N3w-Secret!"}, token=token
    )
    assert wrong.status == 403 and wrong.body["details"][0]["reason"] == "WRONG_PASSWORD", wrong.raw
    changed = call(
        gateway,
        "POST",
        "/v2/account:changePassword",
        {"old_password": PASSWORD, "new_password": "N3w-Secret!"},
        token=token,
    )
    assert changed.status == 200 and set(changed.body) == {"message"}, changed.raw
    refused = call(gateway, "GET", pairs_path("me", "k"), token=token)
    assert refused.status == 401 and refused.body["details"][0]["reason"] == "TOKEN_REVOKED"
    token = call(gateway, "POST", "/api/login", {"login": login, "password": "N3w-Secret!"}).body["token"]
    everywhere = call(gateway, "POST", "/v2/account:logoutAll", {}, token=token)
    assert everywhere.status == 200 and everywhere.body["message"].startswith("You have been logged out everywhere!")
    assert call(gateway, "POST", "/api/read", {"keys": ["k"]}, token=token).status == 401  # v1 routes too
    token = call(gateway, "POST", "/api/login", {"login": login, "password": "N3w-Secret!"}).body["token"]
    assert call(gateway, "PUT", pairs_path("me", "k"), 1, token=token).status == 200
    deleted = call(gateway, "POST", "/v2/account:delete", {"password": "N3w-Secret!"}, token=token)
    assert deleted.status == 200 and deleted.body["deleted_pairs"] == "1", deleted.raw
    assert call(gateway, "POST", "/api/login", {"login": login, "password": "N3w-Secret!"}).status == 404


def test_the_gateway_serves_the_openapi_description(processes):
    reply = call(processes.gateway, "GET", "/openapi.json")
    assert reply.status == 200 and reply.headers["content-type"] == "application/json", reply.raw[:300]
    published = json.loads((Path(__file__).resolve().parents[2] / "docs" / "openapi.json").read_text())
    assert reply.body == published
