"""The gateway's route knowledge agrees with the proto annotations, the one source of the
HTTP API: v1 paths are those http_api.lua shapes, every v2 path lives under /v2/ (which
http_api.lua passes through and Envoy's /v2/ route transcodes), and every service is
transcoded and routed. With two API versions, drift here is the main risk."""

from __future__ import annotations

import re

import pytest
import yaml
from google.api import annotations_pb2

from scripts import render_envoy
from tests.stack import ROOT
from tkv.auth.v1 import auth_pb2
from tkv.kv.v1 import kv_pb2 as kv1_pb2
from tkv.kv.v2 import kv_pb2 as kv2_pb2
from tkv_common.settings import Env

AUTH = auth_pb2.DESCRIPTOR.services_by_name["AuthService"]
KV1 = kv1_pb2.DESCRIPTOR.services_by_name["KeyValueService"]
KV2 = kv2_pb2.DESCRIPTOR.services_by_name["KeyValueService"]


def http_rules(service) -> dict[str, tuple[str, str]]:
    """Method name -> (HTTP method, path template) from its google.api.http option."""
    rules = {}
    for method in service.methods:
        rule = method.GetOptions().Extensions[annotations_pb2.http]
        verb = rule.WhichOneof("pattern")
        rules[method.name] = (verb.upper(), getattr(rule, verb))
    return rules


def lua_routes() -> dict[str, str]:
    text = (ROOT / "envoy" / "http_api.template.lua").read_text()
    table = text[text.index("local ROUTES = {") : text.index("\n}\n", text.index("local ROUTES = {"))]
    return dict(re.findall(r'\["([^"]+)"\] = \{method = "([A-Z]+)"', table))


def routes(services) -> list[tuple[str, str]]:
    """Every (HTTP method, path template) of the services, additional bindings included."""
    found = []
    for service in services:
        for method in service.methods:
            rule = method.GetOptions().Extensions[annotations_pb2.http]
            for binding in (rule, *rule.additional_bindings):
                verb = binding.WhichOneof("pattern")
                found.append((verb.upper(), getattr(binding, verb)))
    return found


def test_every_original_route_of_the_protos_is_shaped_by_http_api_lua_and_no_other():
    original = {path: verb for verb, path in routes([AUTH, KV1]) if not path.startswith("/v2/")}
    assert lua_routes() == original


def test_every_other_route_lives_under_v2():
    # http_api.lua passes /v2/ through, and Envoy's /v2/ route transcodes it.
    assert all(path.startswith("/v2/") for _, path in routes([KV2]))
    assert {path for _, path in routes([AUTH]) if path.startswith("/v2/")} == {
        "/v2/account:changePassword",
        "/v2/account:logoutAll",
        "/v2/account:delete",
    }


@pytest.fixture(scope="module")
def envoy_config(tmp_path_factory):
    out = tmp_path_factory.mktemp("envoy")
    return yaml.safe_load(render_envoy.render(out, Env({})).read_text())


def test_envoy_transcodes_and_routes_every_service(envoy_config):
    manager = envoy_config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    [transcoder] = [f for f in manager["http_filters"] if f["name"] == "envoy.filters.http.grpc_json_transcoder"]
    routes = manager["route_config"]["virtual_hosts"][0]["routes"]
    [v2_route] = [r for r in routes if r["match"].get("prefix") == "/v2/"]
    v2_transcoder = v2_route["typed_per_filter_config"]["envoy.filters.http.grpc_json_transcoder"]
    assert set(transcoder["typed_config"]["services"]) == {AUTH.full_name, KV1.full_name}
    assert set(v2_transcoder["services"]) == {KV2.full_name, AUTH.full_name}
    assert v2_transcoder["convert_grpc_status"] is True
    # The same printing and validation for both versions.
    for option in ("print_options", "request_validation_options", "max_request_body_size"):
        assert v2_transcoder[option] == transcoder["typed_config"][option]
    grpc_prefixes = {r["match"].get("prefix") for r in routes}
    for service in (AUTH, KV1, KV2):
        assert f"/{service.full_name}/" in grpc_prefixes
