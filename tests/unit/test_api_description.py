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


def test_the_published_openapi_is_valid_and_has_every_route():
    spec = json.loads(PUBLISHED.read_text())
    validate(spec)
    described = {(verb.upper(), path) for path, methods in spec["paths"].items() for verb in methods}
    assert described == {(verb, path) for verb, path in routes([AUTH, KV1, KV2])}


def test_buf_lint_and_breaking_against_the_last_release():
    result = subprocess.run(
        [sys.executable, "scripts/check_protos.py"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "buf lint: ok" in result.stdout and "buf breaking against" in result.stdout
