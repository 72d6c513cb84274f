"""AuthService: translates protobuf to the account operations in users.py and back."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import grpc

from tkv.auth.v1 import auth_pb2, auth_pb2_grpc
from tkv_common.errors import with_detail
from tkv_common.keys import KeySet
from tkv_common.tokens import current_claims

from . import messages
from .client_address import Network, client_of
from .users import Accounts, Registration


class AuthServicer(auth_pb2_grpc.AuthServiceServicer):
    def __init__(self, accounts: Accounts, keys: KeySet, trusted_proxies: Sequence[Network] = ()):
        self._accounts = accounts
        self._keys = keys
        self._trusted_proxies = trusted_proxies

    async def Register(self, request: auth_pb2.RegisterRequest, context: grpc.aio.ServicerContext):
        registration = Registration(request.login, request.password, request.name, request.surname)
        await self._accounts.register(registration)
        return auth_pb2.RegisterResponse(message=messages.REGISTERED)

    def _client(self, context: grpc.aio.ServicerContext) -> str:
        """The address the call is attributed to, for the per-address login locks."""
        forwarded = [value for key, value in context.invocation_metadata() or () if key == "x-forwarded-for"]
        return client_of(context.peer(), forwarded, self._trusted_proxies)

    async def Login(self, request: auth_pb2.LoginRequest, context: grpc.aio.ServicerContext):
        issued = await self._accounts.login(request.login, request.password, self._client(context))
        expires = datetime.fromtimestamp(issued.expires_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        message = with_detail(messages.AUTHENTICATED, f"the token expires at {expires}")
        return auth_pb2.LoginResponse(token=issued.token, message=message)

    async def Logout(self, request: auth_pb2.LogoutRequest, context: grpc.aio.ServicerContext):
        await self._accounts.logout(current_claims.get())
        return auth_pb2.LogoutResponse(message=messages.LOGGED_OUT)

    async def GetJwks(self, request: auth_pb2.GetJwksRequest, context: grpc.aio.ServicerContext):
        return auth_pb2.Jwks(keys=[auth_pb2.Jwk(**jwk) for jwk in self._keys.jwks()])

    async def ChangePassword(self, request: auth_pb2.ChangePasswordRequest, context: grpc.aio.ServicerContext):
        await self._accounts.change_password(
            current_claims.get(), request.old_password, request.new_password, self._client(context)
        )
        return auth_pb2.ChangePasswordResponse(message=messages.PASSWORD_CHANGED)

    async def LogoutAll(self, request: auth_pb2.LogoutAllRequest, context: grpc.aio.ServicerContext):
        await self._accounts.logout_all(current_claims.get())
        return auth_pb2.LogoutAllResponse(message=messages.LOGGED_OUT_EVERYWHERE)

    async def DeleteAccount(self, request: auth_pb2.DeleteAccountRequest, context: grpc.aio.ServicerContext):
        deleted = await self._accounts.delete_account(current_claims.get(), request.password, self._client(context))
        return auth_pb2.DeleteAccountResponse(
            message=messages.ACCOUNT_DELETED.format(pairs=deleted), deleted_pairs=deleted
        )
