"""The API as a published, checked artefact (issue 14): docs/openapi.json is what the one
generator makes from the protos (drift fails), a real validator accepts it, it describes
every HTTP route of the protos, and buf lints the protos and finds no breaking change
against the last release."""

from __future__ import annotations

import json
import subprocess
import sys

from openapi_spec_validator import validate

from scripts import gen_protos
from tests.stack import ROOT
from tests.unit.test_gateway_routes import AUTH, KV1, KV2, routes

PUBLISHED = ROOT / "docs" / "openapi.json"


def test_the_published_openapi_is_what_the_generator_makes(tmp_path):
    generated = gen_protos.openapi(tmp_path)
    assert json.loads(generated.read_text()) == json.loads(PUBLISHED.read_text()), (
        "docs/openapi.json is stale: run `make gen` and commit it"
    )


def test_the_published_openapi_is_valid_3_1_and_has_every_route_as_the_gateway_serves_it():
    spec = json.loads(PUBLISHED.read_text())
    validate(spec)
    assert spec["openapi"] == "3.1.0"
    described = {(verb.upper(), path) for path, methods in spec["paths"].items() for verb in methods}
    # The original API's paths as its clients call them: with the trailing slash.
    served = {(verb, path + "/" if path.startswith("/api/") else path) for verb, path in routes([AUTH, KV1, KV2])}
    assert described == served


def test_every_operation_documents_its_errors_and_every_limit_is_a_constraint():
    spec = json.loads(PUBLISHED.read_text())
    for path, methods in spec["paths"].items():
        for verb, operation in methods.items():
            codes = set(operation["responses"])
            error_shape = "google.rpc.Status" if path.startswith("/v2/") else "tkv.Message"
            assert {"405", "500", "503"} <= codes, (verb, path)
            for code in codes - {"200", "201"}:
                schema = operation["responses"][code]["content"]["application/json"]["schema"]
                assert schema == {"$ref": f"#/components/schemas/{error_shape}"}, (verb, path, code)
            if operation["operationId"] not in ("auth_v1_Register", "auth_v1_Login", "auth_v1_GetJwks"):
                assert operation.get("security") == [{"bearer": []}], (verb, path)
    text = json.dumps(spec)
    # The limits of docs/api.md at their defaults, from the services' own settings.
    for constraint in ('"maxItems": 1000', '"maxLength": 1024', '"maxProperties": 1000', '"pattern": "^[A-Za-z0-9]+$"'):
        assert constraint in text, constraint


def test_buf_lint_and_breaking_against_the_last_release():
    result = subprocess.run(
        [sys.executable, "scripts/check_protos.py"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "buf lint: ok" in result.stdout and "buf breaking against" in result.stdout
