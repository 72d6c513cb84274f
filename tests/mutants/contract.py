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
]
