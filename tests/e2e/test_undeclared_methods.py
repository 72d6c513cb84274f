"""Every route of the gateway answers a method it does not declare with 405, an Allow header
naming the methods it does, and a JSON body in its API's error shape: {"message"} for the
original routes, google.rpc.Status (UNIMPLEMENTED) for v2. The routes come from the protos,
so a new one is covered without a line here."""

from __future__ import annotations

import re

import pytest

from tests.e2e.http_client import call
from tests.unit.test_gateway_routes import AUTH, KV1, KV2, routes

STANDARD = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")


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
    for method in STANDARD
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
