"""Signing-key rotation without a restart, driven by `python -m tkv_common.keys`."""

import subprocess
import sys

import grpc
import jwt

from tests.inprocess import register_and_login, start_services, stop_services, unique
from tests.stack import ROOT, eventually
from tests.status_details import reason
from tests.tokens_for_tests import bearer
from tkv.auth.v1 import auth_pb2
from tkv.kv.v1 import kv_pb2

REFRESH = 0.2


def keys_cli(stack, *args) -> str:
    env = {**stack.env, "TKV_JWT_KEYS_REFRESH_SECONDS": str(REFRESH)}
    result = subprocess.run(
        [sys.executable, "-m", "tkv_common.keys", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def kid(token: str) -> str:
    return jwt.get_unverified_header(token)["kid"]


async def jwks_kids(svc) -> set[str]:
    return {key.kid for key in (await svc.auth.GetJwks(auth_pb2.GetJwksRequest())).keys}


async def can_read(svc, token, key) -> str:
    try:
        await svc.kv.Read(kv_pb2.ReadRequest(keys=[key]), metadata=bearer(token))
        return "OK"
    except grpc.aio.AioRpcError as error:
        return reason(error)


async def test_rotation_keeps_old_tokens_valid_until_their_key_is_retired(tarantool_stack):
    svc = await start_services(tarantool_stack, TKV_JWT_KEYS_REFRESH_SECONDS=str(REFRESH))
    try:
        _, old_token = await register_and_login(svc)
        key = unique()
        await svc.kv.Write(kv_pb2.WriteRequest(data={key: 1}), metadata=bearer(old_token))
        old_kid = kid(old_token)
        assert await jwks_kids(svc) == {old_kid}

        # 1. prepare: the new public key is accepted (and published) before anything is signed with it.
        new_kid = keys_cli(tarantool_stack, "prepare").split()[1].rstrip(";")

        async def published() -> bool:
            return await jwks_kids(svc) == {old_kid, new_kid}

        await eventually(published, "the prepared key published")
        _, still_old = await register_and_login(svc, unique("Before"))
        assert kid(still_old) == old_kid

        # 2. activate: new tokens use the new key; tokens of the old key stay valid.
        keys_cli(tarantool_stack, "activate")

        async def signed_with_the_new_key() -> str | None:
            _, token = await register_and_login(svc, unique("After"))
            return token if kid(token) == new_kid else None

        new_token = await eventually(signed_with_the_new_key, "tokens signed with the activated key")
        await svc.kv.Write(kv_pb2.WriteRequest(data={unique(): 1}), metadata=bearer(new_token))
        assert await can_read(svc, old_token, key) == "OK"

        # 3. retire: the old key's tokens are rejected by both services, the new ones are not.
        keys_cli(tarantool_stack, "retire", old_kid)

        async def retired() -> bool:
            return await jwks_kids(svc) == {new_kid} and await can_read(svc, old_token, key) == "TOKEN_INVALID"

        await eventually(retired, "the old key retired by both services")
        try:
            await svc.auth.Logout(auth_pb2.LogoutRequest(), metadata=bearer(old_token))
            raise AssertionError("Logout accepted a token of a retired key")
        except grpc.aio.AioRpcError as error:
            assert reason(error) == "TOKEN_INVALID"
        new_reader = await register_and_login(svc, unique("Reader"))
        assert await can_read(svc, new_reader[1], key) == "OK"
        assert "(signing)" in keys_cli(tarantool_stack, "list")
    finally:
        await stop_services(svc)


def test_the_current_signing_key_cannot_be_retired(tarantool_stack):
    env = dict(tarantool_stack.env)
    current = next(line.split()[0] for line in keys_cli(tarantool_stack, "list").splitlines() if "(signing)" in line)
    result = subprocess.run(
        [sys.executable, "-m", "tkv_common.keys", "retire", current],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "is the current signing key" in result.stderr
