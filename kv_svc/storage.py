"""kv_svc's storage: one stored-function call per request (tarantool/tkv/api.lua).

Each call carries the caller's token id and subject; the stored function checks that the
token is not revoked and its user still exists, in the same round trip
(see docs/token-revocation.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tkv_common.errors import NotFound, TkvError
from tkv_common.tarantool import TOKEN_PROBLEMS, TarantoolClient
from tkv_common.tokens import Claims

from . import messages
from .keys import list_keys

STATUS_ERRORS: dict[str, Callable[..., TkvError]] = {
    **TOKEN_PROBLEMS,
    "missing": lambda keys: NotFound(messages.ABSENT_KEYS.format(keys=list_keys(keys)), reason="KEYS_NOT_FOUND"),
}


def _result(status: str, *payload: Any) -> Any:
    if status != "ok":
        raise STATUS_ERRORS[status](*payload)
    return payload[0]


class KvStorage:
    def __init__(self, client: TarantoolClient):
        self.client = client

    async def read(self, claims: Claims, keys: list[str]) -> list[Any]:
        return _result(*await self.client.call("tkv.kv_read", claims.token_id, claims.subject, keys))

    async def write(self, claims: Claims, pairs: list[list[Any]]) -> list[str]:
        """`pairs` are [key, encoded google.protobuf.Value]; returns the skipped keys."""
        return _result(*await self.client.call("tkv.kv_write", claims.token_id, claims.subject, pairs))
