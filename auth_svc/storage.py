"""auth_svc's storage: one stored-function call per step (tarantool/tkv/api.lua)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from tkv_common.errors import AlreadyExists, ResourceExhausted, TkvError
from tkv_common.tarantool import TarantoolClient
from tkv_common.tokens import MAX_LEEWAY_SECONDS, TOKEN_PROBLEMS, Claims

from . import messages

if TYPE_CHECKING:
    from .config import LoginThrottle
    from .users import Registration


def _throttled(seconds: float) -> ResourceExhausted:
    wait = max(1, round(seconds))
    return ResourceExhausted(
        f"too many failed logins for this login name; retry in {wait} s",
        reason="LOGIN_THROTTLED",
        retry_after_seconds=wait,
    )


# Status strings the stored functions return for outcomes the client must hear about.
STATUS_ERRORS: dict[str, Callable[..., TkvError]] = {
    "exists": partial(AlreadyExists, messages.LOGIN_TAKEN, reason="LOGIN_TAKEN"),
    "locked": _throttled,
    **TOKEN_PROBLEMS,
}


def raise_for_status(status: str, *payload) -> None:
    if status != "ok":
        raise STATUS_ERRORS[status](*payload)


@dataclass(frozen=True)
class Credentials:
    login: str  # as registered
    password_hash: str
    account_id: str
    token_epoch: int


class AuthStorage:
    def __init__(self, client: TarantoolClient):
        self.client = client

    async def create_user(self, r: Registration, password_hash: str) -> None:
        raise_for_status(*await self.client.call("tkv.auth_register", r.login, password_hash, r.name, r.surname))

    async def login_check(self, login: str, client: str, throttle: LoginThrottle) -> Credentials | None:
        """Counts the attempt as a failure (login_succeeded takes it back) and returns the
        account's credentials (None for an unknown login); LOGIN_THROTTLED while locked."""
        status, *payload = await self.client.call(
            "tkv.auth_login_check", login, client, time.time(), throttle.as_limits()
        )
        raise_for_status(status, *payload)
        return Credentials(*payload) if payload else None

    async def login_succeeded(self, login: str, client: str) -> None:
        await self.client.call("tkv.auth_login_succeeded", login, client)

    async def set_password_hash(self, login: str, password_hash: str) -> None:
        await self.client.call("tkv.auth_set_password_hash", login, password_hash)

    async def revoke(self, claims: Claims) -> None:
        # Kept until no verifier can accept the token any more: its exp plus the largest
        # leeway a service may be configured with (not this one's: they may differ).
        keep_until = claims.expires_at + MAX_LEEWAY_SECONDS
        raise_for_status(*await self.client.call("tkv.auth_logout", *claims.storage_args(), keep_until))

    async def password_check(self, claims: Claims, client: str, throttle: LoginThrottle) -> str:
        """The hash of the caller's account, the attempt counted as a failure first (as
        login_check); LOGIN_THROTTLED while this client is locked out of the login."""
        status, *payload = await self.client.call(
            "tkv.auth_password_check", *claims.storage_args(), client, time.time(), throttle.as_limits()
        )
        raise_for_status(status, *payload)
        return payload[0]

    async def change_password(self, claims: Claims, client: str, password_hash: str) -> None:
        raise_for_status(
            *await self.client.call("tkv.auth_change_password", *claims.storage_args(), client, password_hash)
        )

    async def logout_all(self, claims: Claims) -> None:
        raise_for_status(*await self.client.call("tkv.auth_logout_all", *claims.storage_args()))

    async def delete_account(self, claims: Claims, client: str) -> int:
        """Deletes the account, its namespace and grants; returns the pairs deleted."""
        status, *payload = await self.client.call("tkv.auth_delete_account", *claims.storage_args(), client)
        raise_for_status(status, *payload)
        return payload[0]
