"""Register, log in and log out against real Tarantool."""

import asyncio

import grpc
import jwt
import pytest

from tests.inprocess import PASSWORD, register_and_login, unique
from tests.status_details import details, reason
from tests.tokens_for_tests import bearer, sign
from tkv.auth.v1 import auth_pb2
from tkv.kv.v1 import kv_pb2


async def test_login_is_case_insensitive_and_sub_is_the_login_as_registered(svc):
    login = unique("MixedCase")
    await register_and_login(svc, login)
    response = await svc.auth.Login(auth_pb2.LoginRequest(login=login.upper(), password=PASSWORD))
    import jwt

    assert jwt.decode(response.token, options={"verify_signature": False})["sub"] == login
    assert response.message.startswith("You have been successfully authenticated (the token expires at ")


async def test_password_is_stored_as_argon2id_never_in_clear(svc):
    login = unique("hash")
    await register_and_login(svc, login)
    stored = svc.stack.console(f"box.space.users:get('{login}').password_hash")
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


@pytest.mark.parametrize("variant", [str, str.lower, str.upper, str.swapcase])
async def test_registering_a_taken_login_in_any_case_is_already_exists(svc, variant):
    login = unique("Taken")
    await register_and_login(svc, login)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await svc.auth.Register(
            auth_pb2.RegisterRequest(login=variant(login), password=PASSWORD, name="Bob", surname="Jones")
        )
    assert error.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert reason(error.value) == "LOGIN_TAKEN"
    assert svc.stack.console(f"box.space.users:get('{login}').name") == "Anna"


async def test_invalid_registration_writes_nothing(svc):
    login = unique("bad")
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await svc.auth.Register(auth_pb2.RegisterRequest(login=login, password="weak", name="Anna", surname="Smith"))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details(error.value)[1] == [
        ("password", "Incorrect password: the length should be no less than 8 symbols"),
        ("password", "Incorrect password: the password should have at least one UPPER_CASE"),
        ("password", "Incorrect password: the password should have at least one DIGITS"),
        ("password", "Incorrect password: the password should have at least one SPECIAL_SYMBOLS"),
    ]
    assert svc.stack.console(f"box.space.users:get('{login}') == nil") == "true"


async def test_wrong_login_and_wrong_password_get_identical_answers(svc):
    login, _ = await register_and_login(svc)
    answers = []
    for attempt in (
        auth_pb2.LoginRequest(login=unique("nobody"), password=PASSWORD),
        auth_pb2.LoginRequest(login=login, password=PASSWORD + "x"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await svc.auth.Login(attempt)
        answers.append((error.value.code(), error.value.details(), details(error.value)))
    assert answers[0] == answers[1]
    assert answers[0][0] == grpc.StatusCode.UNAUTHENTICATED


async def test_logout_revokes_only_that_token_on_both_services(svc):
    login, token = await register_and_login(svc)
    other = (await svc.auth.Login(auth_pb2.LoginRequest(login=login, password=PASSWORD))).token
    key = unique()
    await svc.kv.Write(kv_pb2.WriteRequest(data={key: 1}), metadata=bearer(token))

    response = await svc.auth.Logout(auth_pb2.LogoutRequest(), metadata=bearer(token))
    assert response.message == "You have been successfully logout from your account! The token has been revoked."

    calls = [
        svc.kv.Read(kv_pb2.ReadRequest(keys=[key]), metadata=bearer(token)),
        svc.kv.Write(kv_pb2.WriteRequest(data={unique(): 1}), metadata=bearer(token)),
        svc.auth.Logout(auth_pb2.LogoutRequest(), metadata=bearer(token)),
    ]
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await call
        assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert reason(error.value) == "TOKEN_REVOKED"
    # Another token of the same user is untouched.
    assert (await svc.kv.Read(kv_pb2.ReadRequest(keys=[key]), metadata=bearer(other))).data[key] == 1


async def test_revocation_is_seen_by_a_read_racing_the_logout(svc):
    _, token = await register_and_login(svc)
    key = unique()
    await svc.kv.Write(kv_pb2.WriteRequest(data={key: 1}), metadata=bearer(token))
    await svc.auth.Logout(auth_pb2.LogoutRequest(), metadata=bearer(token))
    # Immediately after Logout returned, many concurrent reads: none may succeed.
    results = await asyncio.gather(
        *(svc.kv.Read(kv_pb2.ReadRequest(keys=[key]), metadata=bearer(token)) for _ in range(20)),
        return_exceptions=True,
    )
    assert all(isinstance(r, grpc.aio.AioRpcError) and r.code() == grpc.StatusCode.UNAUTHENTICATED for r in results)


@pytest.mark.parametrize(
    ("forge", "expected_reason"),
    [
        (lambda d: sign(d, exp=1_000_000_000), "TOKEN_EXPIRED"),
        (lambda d: sign(d, aud="other"), "TOKEN_INVALID"),
        (lambda d: sign(d)[:-4] + "AAAA", "TOKEN_INVALID"),
        (lambda d: "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "TOKEN_INVALID"),
    ],
)
async def test_bad_tokens_are_rejected_by_both_services(svc, forge, expected_reason):
    token = forge(svc.stack.data_dir)
    for call in (
        svc.kv.Read(kv_pb2.ReadRequest(keys=["a"]), metadata=bearer(token)),
        svc.auth.Logout(auth_pb2.LogoutRequest(), metadata=bearer(token)),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await call
        assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert reason(error.value) == expected_reason


async def test_bare_token_without_scheme_is_rejected(svc, token):
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await svc.kv.Read(kv_pb2.ReadRequest(keys=["a"]), metadata=(("authorization", token),))
    assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_a_revocation_is_kept_until_exp_plus_the_largest_leeway(svc):
    # A token is accepted until exp + leeway (at most 30 s); purged at exp, a logged-out
    # token would come back for up to the leeway. The purge takes its clock as an argument.
    _, token = await register_and_login(svc)
    claims = jwt.decode(token, options={"verify_signature": False})
    await svc.auth.Logout(auth_pb2.LogoutRequest(), metadata=bearer(token))
    jti, exp = claims["jti"], claims["exp"]
    assert svc.stack.console(f"box.space.revoked_tokens:get('{jti}').expires_at") == str(exp + 30)

    def purge_at(now: int) -> str:
        svc.stack.console(f"require('tkv.revocations').purge_expired({now})")
        return svc.stack.console(f"box.space.revoked_tokens:get('{jti}') ~= nil")

    assert purge_at(exp + 1) == "true"
    assert purge_at(exp + 30) == "true"
    assert purge_at(exp + 31) == "false"
