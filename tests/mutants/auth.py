"""Accounts and tokens: auth_svc, tkv_common/tokens.py and the auth functions of tarantool/."""

from tests.mutants.mutant import Mutant

MUTANTS = [
    Mutant(
        "token typ not checked",
        "tkv_common/tokens.py",
        '            or str(header.get("typ", "")).lower() not in (TOKEN_TYPE, f"application/{TOKEN_TYPE}")\n',
        "",
        ("tests/unit/test_tokens.py::test_headers_outside_the_profile_are_rejected",),
    ),
    Mutant(
        "token size not capped",
        "tkv_common/tokens.py",
        "        if len(token) > MAX_TOKEN_BYTES:",
        "        if False:",
        ("tests/unit/test_tokens.py::test_a_validly_signed_token_over_4_kib_is_refused_and_one_under_it_accepted",),
    ),
    Mutant(
        "revocation not checked",
        "tarantool/tkv/api.lua",
        "    if revocations.is_revoked(jti) then",
        "    if false then",
        ("tests/security/test_token_attacks.py::test_a_revoked_token_is_rejected_by_every_rpc",),
    ),
    Mutant(
        "login lock not checked",
        "tarantool/tkv/api.lua",
        "    local wait = logins.wait(login, client, now, limits)\n    if wait ~= nil then",
        "    local wait = logins.wait(login, client, now, limits)\n    if false then",
        ("tests/security/test_login_throttling.py::test_the_nth_failure_locks_the_name_even_for_the_right_password",),
    ),
    Mutant(
        "a direct client's x-forwarded-for believed",
        "auth_svc/client_address.py",
        "    trusted_peer = ip is None or any(",
        "    trusted_peer = True or any(",
        ("tests/security/test_login_throttling.py::test_a_direct_clients_x_forwarded_for_is_not_believed",),
    ),
    Mutant(
        "login locks per login only",
        "auth_svc/servicer.py",
        "        return client_of(context.peer(), forwarded, self._trusted_proxies)",
        '        return "everyone"',
        (
            "tests/security/test_login_throttling.py::"
            "test_an_attacker_hammering_a_login_locks_out_only_their_own_address",
        ),
    ),
    Mutant(
        "a wrong password accepted",
        "auth_svc/users.py",
        "        if account is None or not verified:",
        "        if account is None:",
        ("tests/security/test_passwords.py::test_unknown_login_and_wrong_password_take_the_same_time",),
    ),
    Mutant(
        "no decoy hash for an unknown login",
        "auth_svc/users.py",
        '        verified = await self._hasher.verify(password if plausible else "", candidate, held=True)',
        "        verified = candidate is not None and await self._hasher.verify(password, candidate, held=True)",
        ("tests/security/test_passwords.py::test_unknown_login_and_wrong_password_take_the_same_time",),
    ),
    # Token epoch and account (tarantool/tkv/api.lua token_problem, docs/token-revocation.md).
    Mutant(
        "an earlier token epoch accepted",
        "tarantool/tkv/api.lua",
        "    if user.token_epoch ~= epoch then\n        return 'superseded'",
        "    if user.token_epoch < epoch then\n        return 'superseded'",
        (
            "tests/integration/test_account_lifecycle.py::"
            "test_logout_all_refuses_every_token_of_the_account_and_no_other",
        ),
    ),
    Mutant(
        "LogoutAll leaves earlier tokens valid",
        "tarantool/tkv/api.lua",
        "M.auth_logout_all = authenticated(function(user)\n"
        "    box.space.users:update(user.login, {{'+', 'token_epoch', 1}})\n",
        "M.auth_logout_all = authenticated(function(user)\n",
        (
            "tests/integration/test_account_lifecycle.py::"
            "test_logout_all_refuses_every_token_of_the_account_and_no_other",
        ),
    ),
    Mutant(
        "ChangePassword leaves earlier tokens valid",
        "tarantool/tkv/api.lua",
        "{{'=', 'password_hash', password_hash}, {'+', 'token_epoch', 1}}",
        "{{'=', 'password_hash', password_hash}}",
        (
            "tests/integration/test_account_lifecycle.py::test_changing_the_password_refuses_every_earlier_token_at_once",
        ),
    ),
    Mutant(
        "a deleted account's token accepted for a new account of its login",
        "tarantool/tkv/api.lua",
        "    if user == nil or user.account_id ~= account_id then",
        "    if user == nil then",
        (
            "tests/integration/test_account_lifecycle.py::"
            "test_deleting_an_account_removes_its_namespace_and_a_new_account_of_the_login_starts_empty",
        ),
    ),
    Mutant(
        "a revocation purged at the token's exp, inside the leeway",
        "auth_svc/storage.py",
        "        keep_until = claims.expires_at + MAX_LEEWAY_SECONDS",
        "        keep_until = claims.expires_at",
        ("tests/integration/test_accounts.py::test_a_revocation_is_kept_until_exp_plus_the_largest_leeway",),
    ),
    # JWT checks (tkv_common/tokens.py, RFC 8725).
    Mutant(
        "token signature not verified",
        "tkv_common/tokens.py",
        '                options={"require": REQUIRED_CLAIMS},',
        '                options={"require": REQUIRED_CLAIMS, "verify_signature": False},',
        (
            "tests/unit/test_tokens.py::test_token_signed_with_another_key_claiming_our_kid_is_rejected",
            "tests/unit/test_tokens.py::test_tampered_payload_is_rejected",
        ),
    ),
    Mutant(
        # PyJWT itself still refuses these tokens, with InvalidKeyError or TypeError: the
        # service would answer INTERNAL with a traceback instead of UNAUTHENTICATED.
        "token algorithm list not pinned to EdDSA",
        "tkv_common/tokens.py",
        'ALGORITHMS = ["EdDSA"]',
        'ALGORITHMS = ["EdDSA", "HS256", "none"]',
        (
            "tests/unit/test_tokens.py::test_alg_none_is_rejected",
            "tests/unit/test_tokens.py::test_hmac_signed_with_the_public_key_is_rejected",
        ),
    ),
    Mutant(
        "token exp not checked",
        "tkv_common/tokens.py",
        '                options={"require": REQUIRED_CLAIMS},',
        '                options={"require": REQUIRED_CLAIMS, "verify_exp": False},',
        ("tests/unit/test_tokens.py::test_expired_token_is_rejected",),
    ),
    Mutant(
        "a cached token outlives its exp",
        "tkv_common/tokens.py",
        "            if self._keys.get(kid) is not None and time.time() <= claims.expires_at"
        " + self._settings.leeway_seconds:",
        "            if self._keys.get(kid) is not None:",
        ("tests/unit/test_tokens.py::test_a_cached_token_is_still_rejected_once_expired",),
    ),
    Mutant(
        "token nbf not checked",
        "tkv_common/tokens.py",
        '                options={"require": REQUIRED_CLAIMS},',
        '                options={"require": REQUIRED_CLAIMS, "verify_nbf": False},',
        ("tests/unit/test_tokens.py::test_token_from_the_future_is_rejected",),
    ),
    Mutant(
        "token aud not checked",
        "tkv_common/tokens.py",
        '                options={"require": REQUIRED_CLAIMS},',
        '                options={"require": REQUIRED_CLAIMS, "verify_aud": False},',
        ("tests/unit/test_tokens.py::test_a_token_for_another_audience_is_rejected",),
    ),
    Mutant(
        "token iss not checked",
        "tkv_common/tokens.py",
        "                issuer=self._settings.issuer,\n",
        "",
        ("tests/unit/test_tokens.py::test_a_token_from_another_issuer_is_rejected",),
    ),
    Mutant(
        "key-carrying JWT headers (jku, x5u, jwk, x5c, crit) accepted",
        "tkv_common/tokens.py",
        "            FORBIDDEN_HEADERS & header.keys()\n",
        "            False\n",
        ("tests/unit/test_tokens.py::test_headers_outside_the_profile_are_rejected",),
    ),
    Mutant(
        "a JWT leeway over 30 s accepted",
        "tkv_common/tokens.py",
        "        if leeway > MAX_LEEWAY_SECONDS:",
        "        if leeway > 10 * MAX_LEEWAY_SECONDS:",
        ("tests/unit/test_tokens.py::test_leeway_over_30_seconds_is_a_configuration_error",),
    ),
    # Login limits (tarantool/tkv/logins.lua, docs/security.md "Brute force").
    Mutant(
        "login locked one failure late",
        "tarantool/tkv/logins.lua",
        "    if failures >= t.max_failures then",
        "    if failures > t.max_failures then",
        (
            "tests/security/test_auth_login_limits.py::test_ten_failures_lock_an_address_out_for_30_s_doubling_up_to_15_min",
        ),
    ),
    Mutant(
        "login lock does not double",
        "tarantool/tkv/logins.lua",
        "        seconds = math.min(t.lock_seconds * 2 ^ (failures - t.max_failures), t.max_lock_seconds)",
        "        seconds = math.min(t.lock_seconds * (failures - t.max_failures + 1), t.max_lock_seconds)",
        (
            "tests/security/test_auth_login_limits.py::test_ten_failures_lock_an_address_out_for_30_s_doubling_up_to_15_min",
        ),
    ),
    Mutant(
        "login lock not capped at 15 min",
        "tarantool/tkv/logins.lua",
        "        seconds = math.min(t.lock_seconds * 2 ^ (failures - t.max_failures), t.max_lock_seconds)",
        "        seconds = t.lock_seconds * 2 ^ (failures - t.max_failures)",
        (
            "tests/security/test_auth_login_limits.py::test_ten_failures_lock_an_address_out_for_30_s_doubling_up_to_15_min",
        ),
    ),
    Mutant(
        "per-login slow-down not checked",
        "tarantool/tkv/logins.lua",
        "    if rate ~= nil and rate.window_start + t.login_window_seconds > now"
        " and rate.failures >= t.login_failures then",
        "    if false then",
        (
            "tests/security/test_auth_login_limits.py::test_past_100_failures_in_an_hour_a_login_takes_one_attempt_a_second",
        ),
    ),
    Mutant(
        "a successful login does not reset the failure count",
        "tarantool/tkv/api.lua",
        "function M.auth_login_succeeded(login, client)\n    logins.succeeded(login, client)\n",
        "function M.auth_login_succeeded(login, client)\n",
        ("tests/security/test_login_throttling.py::test_success_resets_the_counter",),
    ),
    Mutant(
        "an unknown login's failures not counted",
        "tarantool/tkv/api.lua",
        "    logins.count_failure(login, client, now, limits)\n"
        "    local user = box.space.users:get(login)\n"
        "    if user == nil then\n"
        "        return 'ok'\n"
        "    end\n",
        "    local user = box.space.users:get(login)\n"
        "    if user == nil then\n"
        "        return 'ok'\n"
        "    end\n"
        "    logins.count_failure(login, client, now, limits)\n",
        ("tests/security/test_login_throttling.py::test_an_unknown_name_is_throttled_exactly_like_a_real_one",),
    ),
    Mutant(
        "a wrong old password not counted toward the login lock",
        "tarantool/tkv/api.lua",
        "    logins.count_failure(user.login, client, now, limits)\n",
        "",
        ("tests/integration/test_account_lifecycle.py::test_wrong_old_passwords_count_toward_the_login_lock",),
    ),
    # Password hashing (auth_svc/passwords.py, users.py).
    Mutant(
        "hashing queue unbounded (no HASHING_BUSY)",
        "auth_svc/passwords.py",
        "        if self._pending >= self._max_pending:",
        "        if False:",
        ("tests/unit/test_passwords.py::test_a_full_queue_refuses_at_once_instead_of_piling_up",),
    ),
    Mutant(
        "a login takes its hashing slot only after its attempt is counted",
        "auth_svc/users.py",
        '        verified = await self._hasher.verify(password if plausible else "", candidate, held=True)',
        '        verified = await self._hasher.verify(password if plausible else "", candidate, held=False)',
        (
            "tests/security/test_passwords.py::test_a_login_refused_with_hashing_busy_is_not_counted_toward_any_lock",
            "tests/security/test_passwords.py::test_in_a_login_storm_exactly_the_evaluated_attempts_are_counted",
        ),
    ),
    Mutant(
        "an outdated hash never upgraded",
        "auth_svc/users.py",
        "        if self._hasher.needs_update(account.password_hash):",
        "        if False:",
        ("tests/security/test_passwords.py::test_an_outdated_hash_is_upgraded_on_the_next_login",),
    ),
    Mutant(
        "one salt for every password hash",
        "auth_svc/passwords.py",
        '            type="ID", memory_cost=policy.memory_kib,',
        '            type="ID", salt=b"tkv-static-salt!", memory_cost=policy.memory_kib,',
        ("tests/unit/test_passwords.py::test_same_password_gets_a_different_salt_each_time",),
    ),
    Mutant(
        "argon2 memory cost below OWASP's by default",
        "tkv_common/catalogue.py",
        '("TKV_ARGON2_MEMORY_KIB", "int", 19 * 1024,',
        '("TKV_ARGON2_MEMORY_KIB", "int", 4 * 1024,',
        ("tests/unit/test_errors_and_settings.py::test_auth_settings_default_to_owasp_argon2_and_30_minutes",),
    ),
    Mutant(
        "tokens live longer than 30 minutes by default",
        "tkv_common/catalogue.py",
        '("TKV_JWT_TTL_SECONDS", "int", 30 * 60,',
        '("TKV_JWT_TTL_SECONDS", "int", 24 * 60 * 60,',
        ("tests/unit/test_errors_and_settings.py::test_auth_settings_default_to_owasp_argon2_and_30_minutes",),
    ),
    # Registration and password rules (auth_svc/users.py).
    Mutant(
        "a 7-character password accepted",
        "auth_svc/users.py",
        "LOGIN_LENGTH, PASSWORD_LENGTH, NAME_LENGTH = (2, 64), (8, 64), (2, 32)",
        "LOGIN_LENGTH, PASSWORD_LENGTH, NAME_LENGTH = (2, 64), (7, 64), (2, 32)",
        ("tests/unit/test_registration_rules.py::test_password_rejects_with_each_rule_in_the_originals_words",),
    ),
    Mutant(
        "a password without a special symbol accepted",
        "auth_svc/users.py",
        '    ("SPECIAL_SYMBOLS", lambda ch: ch.isprintable() and ch not in _LOGIN_CHARACTERS),\n',
        "",
        ("tests/unit/test_registration_rules.py::test_password_rejects_with_each_rule_in_the_originals_words",),
    ),
    Mutant(
        "a login of non-Latin letters accepted",
        "auth_svc/users.py",
        "    if not _LOGIN_CHARACTERS.issuperset(login):",
        "    if not all(ch.isalnum() for ch in login):",
        ("tests/unit/test_registration_rules.py::test_login_rejects_with_each_rule_in_the_originals_words",),
    ),
    Mutant(
        "an invalid registration stored",
        "auth_svc/users.py",
        "        violations = registration_violations(registration)\n        if violations:",
        "        violations = registration_violations(registration)\n        if False:",
        ("tests/integration/test_accounts.py::test_invalid_registration_writes_nothing",),
    ),
    Mutant(
        "ChangePassword accepts a weak new password",
        "auth_svc/users.py",
        "        if violations:\n"
        '            raise InvalidArgument.from_violations(violations, reason="INVALID_PASSWORD")',
        '        if False:\n            raise InvalidArgument.from_violations(violations, reason="INVALID_PASSWORD")',
        ("tests/integration/test_account_lifecycle.py::test_a_wrong_old_password_or_a_weak_new_one_changes_nothing",),
    ),
]
