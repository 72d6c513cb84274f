"""auth_svc behaviour that does not need a real Tarantool."""

import grpc
import pytest

from tests.status_details import details, reason
from tkv.auth.v1 import auth_pb2

GOOD = {"login": "Alice", "password": "Secr3t!pass", "name": "Anna-Maria", "surname": "Smith"}


async def test_invalid_registration_reports_every_field_and_never_touches_storage(auth):
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await auth.stub.Register(
            auth_pb2.RegisterRequest(login="a", password="short", name="-Anna", surname="Roman123")
        )
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    info, violations = details(error.value)
    assert info.reason == "INVALID_REGISTRATION"
    assert [field for field, _ in violations] == [
        "login",
        "password",
        "password",
        "password",
        "password",
        "name",
        "surname",
    ]
    # Each rule's text, in field order, joined by "; ".
    assert error.value.details() == "; ".join(text for _, text in violations)
    assert error.value.details().startswith("Incorrect login: the length should be no less than 2 symbols; ")
    assert auth.storage.calls == []


async def test_password_is_stored_only_as_argon2id_hash(auth):
    auth.storage.answers["tkv.auth_register"] = ["ok"]
    response = await auth.stub.Register(auth_pb2.RegisterRequest(**GOOD))
    assert response.message == "You have been successfully registered!"
    [(function, (login, password_hash, name, surname))] = auth.storage.calls
    assert (function, login, name, surname) == ("tkv.auth_register", "Alice", "Anna-Maria", "Smith")
    assert password_hash.startswith("$argon2id$")
    assert GOOD["password"] not in password_hash


async def test_taken_login_is_already_exists(auth):
    auth.storage.answers["tkv.auth_register"] = ["exists"]
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await auth.stub.Register(auth_pb2.RegisterRequest(**GOOD))
    assert error.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert reason(error.value) == "LOGIN_TAKEN"
    assert error.value.details() == "A user with this login is already exists"


async def test_login_with_malformed_login_gives_the_same_answer_as_a_wrong_password(auth):
    auth.storage.answers["tkv.auth_login_check"] = ["ok"]
    with pytest.raises(grpc.aio.AioRpcError) as malformed:
        await auth.stub.Login(auth_pb2.LoginRequest(login="no spaces allowed", password="x"))
    assert auth.storage.calls == []  # cannot exist, so storage is not asked
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await auth.stub.Login(auth_pb2.LoginRequest(login="Nobody", password="x"))
    # The unknown name's attempt is counted like any other (no hint that it does not exist),
    # in the lock check itself.
    assert [call[0] for call in auth.storage.calls] == ["tkv.auth_login_check"]
    for error in (malformed.value, unknown.value):
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        assert error.details() == "You have entered an incorrect login or password"
        assert reason(error) == "INVALID_CREDENTIALS"
