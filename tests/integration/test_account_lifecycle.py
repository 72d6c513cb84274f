"""ChangePassword, LogoutAll and DeleteAccount against real Tarantool (docs/api.md, "v2 accounts"):
what each revokes, at once, for both services."""

from __future__ import annotations

import grpc
from google.protobuf import json_format, struct_pb2

from tests.inprocess import PASSWORD, register_and_login, unique
from tests.status_details import expect_error, reason
from tests.tokens_for_tests import bearer
from tkv.auth.v1 import auth_pb2
from tkv.kv.v1 import kv_pb2 as v1
from tkv.kv.v2 import kv_pb2 as v2

NEW_PASSWORD = "N3w-Secret!"


async def token_works(svc, token: str) -> bool:
    """Whether both services accept the token (a read of an absent key is NOT_FOUND)."""
    try:
        await svc.kv.Read(v1.ReadRequest(keys=[unique()]), metadata=bearer(token))
    except grpc.aio.AioRpcError as error:
        if error.code() == grpc.StatusCode.NOT_FOUND:
            return True
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED, error.details()
        return False
    raise AssertionError("an absent key was found")


async def login(svc, name: str, password: str = PASSWORD) -> str:
    return (await svc.auth.Login(auth_pb2.LoginRequest(login=name, password=password))).token


async def test_changing_the_password_refuses_every_earlier_token_at_once(svc):
    name, first = await register_and_login(svc)
    second = await login(svc, name)
    response = await svc.auth.ChangePassword(
        auth_pb2.ChangePasswordRequest(old_password=PASSWORD, new_password=NEW_PASSWORD), metadata=bearer(first)
    )
    assert response.message.startswith("Your password has been changed.")
    for token in (first, second):
        assert not await token_works(svc, token)
        error = await expect_error(
            svc.auth.Logout(auth_pb2.LogoutRequest(), metadata=bearer(token)), grpc.StatusCode.UNAUTHENTICATED
        )
        assert reason(error) == "TOKEN_REVOKED"
        assert error.details() == (
            "You have not been authorized! (access token has been revoked: the account's password changed"
            " or it logged out everywhere)"
        )
    await expect_error(login(svc, name), grpc.StatusCode.UNAUTHENTICATED)
    assert await token_works(svc, await login(svc, name, NEW_PASSWORD))


async def test_a_wrong_old_password_or_a_weak_new_one_changes_nothing(svc):
    name, token = await register_and_login(svc)
    error = await expect_error(
        svc.auth.ChangePassword(
            auth_pb2.ChangePasswordRequest(old_password="Wr0ng!pass", new_password=NEW_PASSWORD), metadata=bearer(token)
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    assert (reason(error), error.details()) == ("WRONG_PASSWORD", "You have entered an incorrect password")
    error = await expect_error(
        svc.auth.ChangePassword(
            auth_pb2.ChangePasswordRequest(old_password=PASSWORD, new_password="short"), metadata=bearer(token)
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert error.details().startswith("Incorrect password: the length should be no less than 8 symbols")
    assert await token_works(svc, token)
    assert await token_works(svc, await login(svc, name))


async def test_wrong_old_passwords_count_toward_the_login_lock(svc):
    name, token = await register_and_login(svc)
    wrong = auth_pb2.ChangePasswordRequest(old_password="Wr0ng!pass", new_password=NEW_PASSWORD)
    codes = []
    for _ in range(12):
        try:
            await svc.auth.ChangePassword(wrong, metadata=bearer(token))
        except grpc.aio.AioRpcError as error:
            codes.append(error.code())
    # The default lock: 10 failures from one address, then RESOURCE_EXHAUSTED.
    assert codes[:10] == [grpc.StatusCode.PERMISSION_DENIED] * 10
    assert codes[10:] == [grpc.StatusCode.RESOURCE_EXHAUSTED] * 2
    await expect_error(login(svc, name), grpc.StatusCode.RESOURCE_EXHAUSTED)


async def test_logout_all_refuses_every_token_of_the_account_and_no_other(svc):
    name, first = await register_and_login(svc)
    second = await login(svc, name)
    _, someone_else = await register_and_login(svc)
    response = await svc.auth.LogoutAll(auth_pb2.LogoutAllRequest(), metadata=bearer(second))
    assert response.message.startswith("You have been logged out everywhere!")
    assert not await token_works(svc, first) and not await token_works(svc, second)
    assert await token_works(svc, someone_else)
    assert await token_works(svc, await login(svc, name))


async def test_deleting_an_account_removes_its_namespace_and_a_new_account_of_the_login_starts_empty(svc):
    name, token = await register_and_login(svc)
    md = bearer(token)
    mine, shared = unique(), unique()
    for namespace, key in (("me", mine), ("shared", shared)):
        await svc.kv2.PutPair(
            v2.PutPairRequest(namespace=namespace, key=key, value=struct_pb2.Value(number_value=1)), metadata=md
        )
    error = await expect_error(
        svc.auth.DeleteAccount(auth_pb2.DeleteAccountRequest(password="Wr0ng!pass"), metadata=md),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    assert reason(error) == "WRONG_PASSWORD"
    response = await svc.auth.DeleteAccount(auth_pb2.DeleteAccountRequest(password=PASSWORD), metadata=md)
    assert response.deleted_pairs == 1
    assert response.message == "Your account has been deleted, with your namespace and its 1 pairs."
    assert not await token_works(svc, token)
    assert svc.stack.console(f"box.space.users:get('{name}') == nil") == "true"
    assert svc.stack.console(f"box.space.usage:get('{name}') == nil") == "true"
    # Its pair in `shared` stays, owner unknown: nobody may change it any more.
    _, other = await register_and_login(svc)
    got = await svc.kv2.GetPair(v2.GetPairRequest(namespace="shared", key=shared), metadata=bearer(other))
    assert got.owner == "" and json_format.MessageToDict(got.value) == 1
    # The login registered again is a new account: the old token stays refused, the
    # namespace is empty.
    await svc.auth.Register(auth_pb2.RegisterRequest(login=name, password=PASSWORD, name="Anna", surname="Smith"))
    fresh = await login(svc, name)
    assert not await token_works(svc, token)
    error = await expect_error(
        svc.kv2.GetPair(v2.GetPairRequest(namespace="me", key=mine), metadata=bearer(token)),
        grpc.StatusCode.UNAUTHENTICATED,
    )
    assert (
        error.details()
        == "You are not authorized! Please, sign in or sign up (the access token's account no longer exists)"
    )
    await expect_error(
        svc.kv2.GetPair(v2.GetPairRequest(namespace="me", key=mine), metadata=bearer(fresh)), grpc.StatusCode.NOT_FOUND
    )
