"""The gateway: envoy/ and scripts/render_envoy.py, seen from HTTP as clients see it."""

from tests.mutants.mutant import Mutant

MUTANTS = [
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
