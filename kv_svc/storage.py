"""kv_svc's storage: one stored-function call per request (tarantool/tkv/api.lua).

Each call carries the caller's token id; the stored function checks the revocation in
the same round trip (see docs/token-revocation.md).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from tkv_common.errors import NotFound, TkvError, Unauthenticated
from tkv_common.tarantool import TarantoolClient

from .keys import quote_keys

STATUS_ERRORS: dict[str, Callable[..., TkvError]] = {
    "revoked": partial(Unauthenticated, "access token has been revoked", reason="TOKEN_REVOKED"),
    "missing": lambda keys: NotFound(f"keys not found: {quote_keys(keys)}", reason="KEYS_NOT_FOUND"),
}


def _result(status: str, *payload: Any) -> Any:
    if status != "ok":
        raise STATUS_ERRORS[status](*payload)
    return payload[0]


class KvStorage:
    def __init__(self, client: TarantoolClient):
        self.client = client

    async def read(self, token_id: str, keys: list[str]) -> list[Any]:
        return _result(*await self.client.call("tkv.kv_read", token_id, keys))

    async def write(self, token_id: str, pairs: list[list[Any]]) -> list[str]:
        return _result(*await self.client.call("tkv.kv_write", token_id, pairs))
