"""The gateway: envoy/ and scripts/render_envoy.py, seen from HTTP as clients see it."""

from tests.mutants.mutant import Mutant

MUTANTS = [
    Mutant(
        "the depth refusal is rewritten to 400 on every route, a Read's wrong-typed keys too",
        "envoy/http_api.template.lua",
        '  if operation ~= "write" or handle:headers():get(":status") ~= "422" then',
        '  if handle:headers():get(":status") ~= "422" then',
        ("tests/e2e/test_http_api.py::test_depth_limit_through_http_is_400_never_5xx",),
    ),
    Mutant(
        "one health check that times out takes kv_svc out of rotation",
        "envoy/envoy.template.yaml",
        "      unhealthy_threshold: 3\n      healthy_threshold: 1\n"
        "      grpc_health_check: {service_name: tkv.kv.v1.KeyValueService}\n",
        "      unhealthy_threshold: 1\n      healthy_threshold: 1\n"
        "      grpc_health_check: {service_name: tkv.kv.v1.KeyValueService}\n",
        ("tests/reliability/test_outage.py::test_one_health_check_that_times_out_keeps_the_service_in_rotation",),
    ),
    Mutant(
        "the transcoder's depth refusal is found anywhere in a 422, a client's quoted text too",
        "envoy/http_api.template.lua",
        "body:getBytes(0, #TOO_DEEP) == TOO_DEEP",
        'body:getBytes(0, body:length()):find("Message too deep", 1, true) ~= nil',
        ("tests/e2e/test_http_api.py::test_depth_limit_through_http_is_400_never_5xx",),
    ),
    Mutant(
        "a gRPC call with another method than POST reaches the service",
        "envoy/http_api.template.lua",
        '    if headers:get(":method") ~= "POST" then\n      -- As a gRPC server',
        "    if false then\n      -- As a gRPC server",
        ("tests/e2e/test_undeclared_methods.py::test_a_grpc_call_with_another_method_than_post_is_unimplemented",),
    ),
    Mutant(
        "a method no registry knows is refused by the codec with a bare 400",
        "envoy/envoy.template.yaml",
        "            allow_custom_methods: true\n",
        "",
        ("tests/e2e/test_undeclared_methods.py",),
    ),
    Mutant(
        "a QUERY without Content-Type gets Envoy's empty 400",
        "envoy/envoy.template.yaml",
        "                    expression: \"response.code_details == 'query_missing_content_type'\"\n",
        "                    expression: \"response.code_details == 'query_missing_content_type_'\"\n",
        ("tests/e2e/test_undeclared_methods.py::test_a_query_without_content_type_is_400_with_a_json_body",),
    ),
    Mutant(
        "a well-formed v1 value nested past the transcoder's limit answers 422",
        "envoy/http_api.template.lua",
        "    if nested_too_deep(handle, operation) then\n",
        "    if false then\n",
        ("tests/e2e/test_http_api.py::test_depth_limit_through_http_is_400_never_5xx",),
    ),
    Mutant(
        "Register not rate-limited",
        "envoy/envoy.template.yaml",
        '              - match: {path: "/tkv.auth.v1.AuthService/Register"}\n'
        "                route: {cluster: auth_svc, timeout: 30s, rate_limits: [{actions: [{remote_address: {}}]}]}\n"
        "                typed_per_filter_config:\n"
        "                  envoy.filters.http.local_ratelimit: *auth_rate_limit\n",
        "",
        ("tests/security/test_gateway_limits.py::test_register_is_rate_limited_per_client",),
    ),
    Mutant(
        "X-Forwarded-For trusted",
        "envoy/envoy.template.yaml",
        "          xff_num_trusted_hops: 0",
        "          xff_num_trusted_hops: 1",
        ("tests/security/test_gateway_limits.py::test_a_forged_x_forwarded_for_does_not_make_a_new_client",),
    ),
    Mutant(
        "upstream certificate name not checked",
        "scripts/render_envoy.py",
        '            match_typed_subject_alt_names:\n            - san_type: {"IP_ADDRESS" if is_ip else "DNS"}\n'
        '              matcher: {{exact: "{host}"}}\n',
        "",
        ("tests/security/test_tls.py::test_envoy_refuses_a_service_whose_certificate_names_another_host",),
    ),
    Mutant(
        "the original's typo corrected",
        "auth_svc/messages.py",
        "login should have onlu lower-upper",
        "login should have only lower-upper",
        ("tests/unit/test_registration_rules.py", "tests/e2e/test_original_wording.py"),
    ),
    Mutant(
        "malformed JSON answered 400",
        "envoy/envoy.template.yaml",
        "              status_code: 422",
        "              status_code: 400",
        ("tests/e2e/test_original_wording.py::test_a_malformed_body_is_422_with_a_message_on_every_route",),
    ),
]


# The per-client edge limit on the calls that check a password (docs/security.md).
def _auth_route(method: str) -> str:
    """A limited route of auth_svc's, as envoy.template.yaml writes it."""
    return (
        f'              - match: {{path: "/tkv.auth.v1.AuthService/{method}"}}\n'
        "                route: {cluster: auth_svc, timeout: 30s, rate_limits: [{actions: [{remote_address: {}}]}]}\n"
        "                typed_per_filter_config:\n"
        "                  envoy.filters.http.local_ratelimit: *auth_rate_limit\n"
    )


_LIMITS = "tests/security/test_gateway_limits.py"
_BAD_INPUT = "tests/reliability/test_bad_input.py"
_OVERLOAD = "tests/reliability/test_overload.py"

MUTANTS += [
    Mutant(
        "Login not rate-limited",
        "envoy/envoy.template.yaml",
        '              - match: {path: "/tkv.auth.v1.AuthService/Login"}\n'
        "                route: {cluster: auth_svc, timeout: 30s, rate_limits: [{actions: [{remote_address: {}}]}]}\n",
        '              - match: {path: "/tkv.auth.v1.AuthService/Login"}\n'
        "                route: {cluster: auth_svc, timeout: 30s}\n",
        (f"{_LIMITS}::test_login_is_rate_limited_per_client_over_http_and_grpc",),
    ),
    Mutant(
        "ChangePassword not rate-limited",
        "envoy/envoy.template.yaml",
        _auth_route("ChangePassword"),
        "",
        (f"{_LIMITS}::test_the_calls_that_check_a_password_are_rate_limited_per_client[ChangePassword]",),
    ),
    Mutant(
        "DeleteAccount not rate-limited",
        "envoy/envoy.template.yaml",
        _auth_route("DeleteAccount"),
        "",
        (f"{_LIMITS}::test_the_calls_that_check_a_password_are_rate_limited_per_client[DeleteAccount]",),
    ),
    Mutant(
        "batch size limit lets 1001 keys through",
        "kv_svc/keys.py",
        "        if count > self._limits.max_batch_keys:\n",
        "        if count > self._limits.max_batch_keys + 1:\n",
        (
            "tests/integration/test_pairs.py::test_1000_keys_are_accepted_and_1001_rejected_with_nothing_written",
            f"{_BAD_INPUT}::test_batches_hold_at_most_1000_keys_in_v1_and_v2",
        ),
    ),
    Mutant(
        "key size not capped",
        "kv_svc/keys.py",
        "        if size > self._limits.max_key_bytes:\n"
        "            text = messages.KEY_TOO_LONG.format(limit=self._limits.max_key_bytes)\n"
        '            return with_detail(text, f"{_place(where)}: {size} bytes")\n',
        "",
        (
            "tests/integration/test_pairs.py::test_key_length_limit_is_1024_bytes",
            f"{_BAD_INPUT}::test_bad_keys_are_precise_400s_and_write_nothing[too-long]",
            f"{_BAD_INPUT}::test_v2_refuses_a_key_over_1024_bytes_and_writes_nothing_of_the_batch",
        ),
    ),
    Mutant(
        "key size counted in characters, not bytes of UTF-8",
        "kv_svc/keys.py",
        '        size = len(key.encode("utf-8"))\n',
        "        size = len(key)\n",
        (f"{_BAD_INPUT}::test_a_key_is_limited_in_bytes_of_utf8_not_in_characters",),
    ),
    Mutant(
        "a namespace checked at its start only",
        "kv_svc/names.py",
        "    if _NAMESPACE.fullmatch(namespace):\n",
        "    if _NAMESPACE.match(namespace):\n",
        (f"{_BAD_INPUT}::test_a_namespace_is_me_shared_or_a_login_of_2_to_64_letters_and_digits",),
    ),
    Mutant(
        "page size not capped",
        "kv_svc/rules_v2.py",
        "        limit = min(page_size or self._v2.default_page_size, self._v2.max_page_size)\n",
        "        limit = page_size or self._v2.default_page_size\n",
        (f"{_BAD_INPUT}::test_pages_hold_the_default_100_and_at_most_1000_pairs",),
    ),
    Mutant(
        "a body announced over the limit is read before the 413",
        "envoy/http_api.template.lua",
        "  if length and length > MAX_BODY_BYTES then\n"
        '    return reply(handle, 413, "request body is " .. length .. " bytes; the limit is " .. MAX_BODY_BYTES)\n'
        "  end\n",
        "",
        (f"{_BAD_INPUT}::test_a_body_announced_over_the_limit_is_413_before_it_is_sent",),
    ),
    Mutant(
        "v2 answers over the response limit not refused by storage",
        "tarantool/tkv/kv.lua",
        "    if size > max_bytes then\n"
        "        return 'too_large', size, max_bytes\n"
        "    end\n"
        "    return 'ok', found, missing, store.revision()\n",
        "    return 'ok', found, missing, store.revision()\n",
        (
            "tests/integration/test_pairs_v2.py"
            "::test_answers_over_the_response_limit_are_refused_or_split_into_pages_before_sending",
        ),
    ),
    Mutant(
        "calls in flight not capped",
        "tkv_common/server.py",
        "            maximum_concurrent_rpcs=settings.max_concurrent_rpcs,\n",
        "            maximum_concurrent_rpcs=None,\n",
        (
            f"{_OVERLOAD}::test_logins_over_the_cap_are_refused_by_the_cap",
            f"{_OVERLOAD}::test_calls_over_the_cap_are_refused_while_the_admitted_ones_run",
            f"{_OVERLOAD}::test_overload_through_the_gateway_is_429_json",
        ),
    ),
    Mutant(
        "no timeout on request headers",
        "envoy/envoy.template.yaml",
        "          request_headers_timeout: ${HEADERS_TIMEOUT}s\n",
        "",
        (f"{_OVERLOAD}::test_a_client_that_never_finishes_its_headers_is_disconnected",),
    ),
    Mutant(
        "the edge burst one larger than configured",
        "scripts/render_envoy.py",
        '"AUTH_BURST": str(env.int("TKV_GATEWAY_AUTH_BURST")),',
        '"AUTH_BURST": str(env.int("TKV_GATEWAY_AUTH_BURST") + 1),',
        (f"{_LIMITS}::test_register_is_rate_limited_per_client",),
    ),
    Mutant(
        "a refused token on read answered 400",
        "envoy/http_api.template.lua",
        "  read = {[5] = 400},",
        "  read = {[5] = 400, [16] = 400},",
        (f"{_LIMITS}::test_oversized_and_garbled_authorization_headers_are_refused",),
    ),
    Mutant(
        "a refused write batch writes its valid pairs",
        "kv_svc/rules_v1.py",
        "        if violations:\n"
        '            raise InvalidArgument.from_violations(violations, reason="INVALID_PAIRS")\n'
        "        return await self._storage.write(claims, pairs)\n",
        "        skipped = await self._storage.write(claims, pairs)\n"
        "        if violations:\n"
        '            raise InvalidArgument.from_violations(violations, reason="INVALID_PAIRS")\n'
        "        return skipped\n",
        (f"{_BAD_INPUT}::test_bad_keys_are_precise_400s_and_write_nothing",),
    ),
]


# The web console at /ui/ (docs/ui.md): its files are served by the gateway.
_UI = "tests/e2e/test_ui.py"
MUTANTS += [
    Mutant(
        "the console's policy allows inline script",
        "scripts/render_envoy.py",
        """        "script-src 'self'",\n""",
        """        "script-src 'self' 'unsafe-inline'",\n""",
        (f"{_UI}::test_every_console_file_carries_a_strict_policy",),
    ),
    Mutant(
        "the console renders a stored string as HTML",
        "ui/dom.js",
        "    element.append(child instanceof Node ? child : document.createTextNode(String(child)));",
        "    if (child instanceof Node) element.append(child);\n"
        '    else element.insertAdjacentHTML("beforeend", String(child));',
        (f"{_UI}::test_stored_markup_is_shown_as_text_and_stays_inert",),
    ),
    Mutant(
        "the console saves without expected_version",
        "ui/app.js",
        "api.putPair(state.namespace, key, edited.value, expectedVersion, ttl)",
        "api.putPair(state.namespace, key, edited.value, undefined, ttl)",
        (f"{_UI}::test_a_cli_change_mid_edit_shows_both_values_and_overwrites_nothing_silently",),
    ),
    Mutant(
        "the console's watch resumes from now, not from its revision",
        "ui/app.js",
        "await api.watch(state.namespace, listPrefix(), state.revision, open,",
        'await api.watch(state.namespace, listPrefix(), "0", open,',
        (f"{_UI}::test_a_dropped_watch_resumes_from_its_revision_with_no_gap",),
    ),
]
