"""The published HTTP contract (docs/openapi.json, the gateway's answers to what it does not serve)."""

from tests.mutants.mutant import Mutant

MUTANTS = [
    Mutant(
        "the service's key limit drifts from the published description",
        "kv_svc/keys.py",
        "        if size > self._limits.max_key_bytes:",
        "        if size > self._limits.max_key_bytes - 24:",
        ("tests/contract/test_openapi_contract.py::test_the_pairs_and_grants_calls_meet_the_description",),
    ),
    Mutant(
        "a v2 path answers an undeclared method with 404",
        "envoy/http_api.template.lua",
        '    if allowed ~= nil and not methods[headers:get(":method")] then',
        "    if false then",
        ("tests/e2e/test_undeclared_methods.py",),
    ),
    Mutant(
        "the API reference page lets inline script run",
        "scripts/render_envoy.py",
        "\"default-src 'none'; script-src 'self'; style-src",
        "\"default-src 'none'; script-src 'self' 'unsafe-inline'; style-src",
        ("tests/e2e/test_api_docs.py::test_the_docs_page_and_its_assets_carry_a_strict_policy",),
    ),
]
