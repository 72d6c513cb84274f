"""The published HTTP contract (docs/openapi.json, the gateway's answers to what it does not
serve), and the contracts between layers: Lua statuses and the services' tables
(tests/unit/test_storage_contract.py), every RPC in every layer
(tests/unit/test_client_covers_the_api.py)."""

from tests.mutants.mutant import Mutant

_STATUSES = "tests/unit/test_storage_contract.py"
_COVERAGE = "tests/unit/test_client_covers_the_api.py"

MUTANTS = [
    Mutant(
        "the service's key limit drifts from the published description",
        "kv_svc/keys.py",
        "        if size > self._limits.max_key_bytes:",
        "        if size > self._limits.max_key_bytes - 24:",
        ("tests/contract/test_openapi_contract.py::test_the_pairs_and_grants_calls_meet_the_description",),
    ),
    Mutant(
        "a link of the description names what a client cannot follow it with",
        "docs/openapi.json",
        '                  "password": "$request.body#/password"\n',
        '                  "password": "$request.body#/name"\n',
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
    Mutant(
        "a status the stored functions answer has no error in kv_svc",
        "kv_svc/storage.py",
        '    "too_many": lambda limit: ResourceExhausted(\n',
        '    "too_many_watches": lambda limit: ResourceExhausted(\n',
        (f"{_STATUSES}::test_every_status_a_stored_function_answers_has_its_error_in_the_service[kv]",),
    ),
    Mutant(
        "kv_svc's error for a status takes another payload than Lua sends",
        "kv_svc/storage.py",
        '    "no_grant": lambda grantee, prefix: NotFound(\n',
        '    "no_grant": lambda grantee, prefix, role: NotFound(\n',
        (f"{_STATUSES}::test_each_error_takes_the_payload_its_status_comes_with[kv]",),
    ),
    Mutant(
        "auth_svc maps a status no stored function answers",
        "auth_svc/storage.py",
        '    "locked": _throttled,\n',
        '    "locked": _throttled,\n    "throttled": _throttled,\n',
        (f"{_STATUSES}::test_every_error_of_a_status_table_is_a_status_some_stored_function_answers[auth]",),
    ),
    Mutant(
        "kv_svc names the stored shared namespace differently from Lua",
        "kv_svc/names.py",
        'STORED_SHARED = ""\n',
        'STORED_SHARED = "shared"\n',
        (f"{_STATUSES}::test_the_shared_namespace_is_stored_as_the_lua_side_stores_it",),
    ),
    Mutant(
        "an RPC without its blocking client method",
        "tkv_client/sync.py",
        "    def revoke(self, grantee: str",
        "    def revoke_grant(self, grantee: str",
        (f"{_COVERAGE}::test_every_rpc_has_a_client_method_on_both_clients",),
    ),
    Mutant(
        "an RPC without its CLI command",
        "tkv_client/cli.py",
        "@click.pass_obj\ndef revoke(",
        # Registered as `tkv remove-grant` instead.
        "@click.pass_obj\ndef remove_grant(",
        (f"{_COVERAGE}::test_every_rpc_a_user_would_call_has_a_cli_command",),
    ),
    Mutant(
        "an RPC without its route in the published description",
        "docs/openapi.json",
        '    "/v2/namespaces/{namespace}/grants/{grantee}": {\n'
        '      "delete": {\n'
        '        "operationId": "kv_v2_DeleteGrant",\n',
        '    "/v2/namespaces/{namespace}/grants/{grantee}": {\n'
        '      "delete": {\n'
        '        "operationId": "kv_v2_RemoveGrant",\n',
        (f"{_COVERAGE}::test_every_rpc_has_a_route_in_the_published_description",),
    ),
    Mutant(
        "a v2 call left out of the access matrix",
        "tests/e2e/test_http_api_v2.py",
        'CALLS = [*PAIR_CALLS, "Watch", *GRANT_CALLS]\n',
        "CALLS = [*PAIR_CALLS, *GRANT_CALLS]\n",
        (f"{_COVERAGE}::test_every_rpc_decided_per_namespace_has_its_rows_in_the_access_matrix",),
    ),
    Mutant(
        "Logout let in without a token",
        "auth_svc/server.py",
        'f"/{SERVICE_NAME}/GetJwks"})',
        'f"/{SERVICE_NAME}/GetJwks", f"/{SERVICE_NAME}/Logout"})',
        (f"{_COVERAGE}::test_the_public_rpcs_are_the_ones_the_auth_service_lets_in_without_a_token",),
    ),
]
