"""Accounts and tokens: auth_svc, tkv_common/tokens.py and the auth functions of tarantool/."""

from tests.mutants.mutant import Mutant

MUTANTS = [
    Mutant(
        "token typ not checked",
        "tkv_common/tokens.py",
        '            or str(header.get("typ", "")).lower() not in (TOKEN_TYPE, f"application/{TOKEN_TYPE}")\n',
        "",
        ("tests/unit/test_tokens.py",),
    ),
    Mutant(
        "token size not capped",
        "tkv_common/tokens.py",
        "        if len(token) > MAX_TOKEN_BYTES:",
        "        if False:",
        ("tests/unit/test_tokens.py",),
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
        ("tests/security/test_login_throttling.py",),
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
        '        verified = await self._hasher.verify(password if plausible else "", candidate)',
        "        verified = candidate is not None and await self._hasher.verify(password, candidate)",
        ("tests/security/test_passwords.py::test_unknown_login_and_wrong_password_take_the_same_time",),
    ),
]
