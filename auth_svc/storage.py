"""auth_svc's storage: one stored-function call per operation (tarantool/tkv/api.lua)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from tkv_common.errors import AlreadyExists, TkvError, Unauthenticated
from tkv_common.tarantool import TarantoolClient

if TYPE_CHECKING:
    from .users import Registration

# Status strings the stored functions return for outcomes the client must hear about.
STATUS_ERRORS: dict[str, Callable[[], TkvError]] = {
    "exists": partial(AlreadyExists, "login is already taken", reason="LOGIN_TAKEN"),
    "revoked": partial(Unauthenticated, "access token has been revoked", reason="TOKEN_REVOKED"),
}


def raise_for_status(status: str) -> None:
    if status != "ok":
        raise STATUS_ERRORS[status]()


@dataclass(frozen=True)
class Credentials:
    login: str  # as registered
    password_hash: str


class AuthStorage:
    def __init__(self, client: TarantoolClient):
        self.client = client

    async def create_user(self, r: Registration, password_hash: str) -> None:
        [status] = await self.client.call("tkv.auth_register", r.login, password_hash, r.name, r.surname)
        raise_for_status(status)

    async def credentials(self, login: str) -> Credentials | None:
        result = await self.client.call("tkv.auth_credentials", login)
        return Credentials(result[0], result[1]) if result and result[0] is not None else None

    async def revoke(self, token_id: str, expires_at: int) -> None:
        [status] = await self.client.call("tkv.auth_logout", token_id, expires_at)
        raise_for_status(status)
