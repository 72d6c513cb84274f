"""Every route of the gateway answers a method it does not declare with 405, an Allow header
naming the methods it does, and a JSON body in its API's error shape: {"message"} for the
original routes, google.rpc.Status (UNIMPLEMENTED) for v2. The routes come from the protos,
so a new one is covered without a line here. The methods: HTTP's standard ones, QUERY, and
one no registry knows (Envoy's codec lets it through: allow_custom_methods)."""

from __future__ import annotations

import http.client
import json
import re

import pytest

from tests.e2e.http_client import call
from tests.unit.test_gateway_routes import AUTH, KV1, KV2, routes

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "QUERY", "FROBNICATE")


def concrete(template: str) -> str:
    """A path of the template: every {field} filled with a plausible value."""
    return re.sub(r"\{[^}]+\}", "sample", template)


def declared() -> dict[str, set[str]]:
    by_path: dict[str, set[str]] = {}
    for verb, template in routes([AUTH, KV1, KV2]):
        by_path.setdefault(concrete(template), set()).add(verb)
    by_path["/openapi.json"] = {"GET"}
    return by_path


CASES = [
    (path, method, allowed)
    for path, allowed in sorted(declared().items())
    for method in METHODS
    if method not in allowed
]


@pytest.mark.parametrize(("path", "method", "allowed"), CASES, ids=[f"{m} {p}" for p, m, _ in CASES])
def test_an_undeclared_method_is_405_with_allow_and_a_json_body(processes, path, method, allowed):
    reply = call(processes.gateway, method, path)
    assert reply.status == 405, (reply.status, reply.raw)
    assert set(reply.headers["allow"].split(", ")) == allowed
    if method == "HEAD":
        return  # no body, by definition
    assert reply.headers["content-type"] == "application/json"
    if path.startswith("/v2/"):
        assert reply.body["code"] == 12 and f"method {method} is not allowed" in reply.body["message"], reply.body
    else:
        assert set(reply.body) == {"message"} and f"method {method} is not allowed" in reply.body["message"]


def test_the_original_routes_are_covered_with_their_trailing_slash_too(processes):
    reply = call(processes.gateway, "DELETE", "/api/read/")
    assert (reply.status, reply.headers["allow"]) == (405, "POST")


@pytest.mark.parametrize("path", ["/api/read/", "/v2/namespaces/me/pairs"])
def test_a_query_without_content_type_is_400_with_a_json_body(processes, path):
    # Refused by Envoy itself before any filter runs, so no Allow: local_reply_config gives
    # it the API's shape.
    host, port = processes.gateway.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request("QUERY", path)
        response = connection.getresponse()
        status, content_type, raw = response.status, response.getheader("content-type"), response.read()
    finally:
        connection.close()
    assert (status, content_type) == (400, "application/json"), raw
    body = json.loads(raw)
    assert body["message"] == "a QUERY request must name its body's media type in Content-Type"
    assert set(body) == ({"code", "message"} if path.startswith("/v2/") else {"message"})
    if path.startswith("/v2/"):
        assert body["code"] == 3


@pytest.mark.parametrize("method", ["GET", "FROBNICATE"])
def test_a_grpc_call_with_another_method_than_post_is_unimplemented(processes, method):
    # gRPC's own answer to a call no one serves, in a trailers-only reply; no service sees it.
    path = "/tkv.kv.v2.KeyValueService/GetPair"
    reply = call(processes.gateway, method, path, headers={"content-type": "application/grpc"})
    assert (reply.status, reply.headers.get("grpc-status"), reply.headers.get("allow")) == (200, "12", "POST")
    assert reply.headers["grpc-message"] == f"method {method} is not allowed on {path}; use POST"
