"""The asyncio client of tkv: both APIs over gRPC, through the gateway or straight to the
services.

    async with AsyncClient("127.0.0.1:8080", login="alice", password="...") as tkv:
        await tkv.put("config/color", "blue", ttl=60)
        pair = await tkv.get("config/color")          # Pair(key=..., value='blue', version=...)
        async for pair in tkv.list("config/"):
            print(pair.key, pair.value)

Tokens: from credentials (logged in on first use, and again before the token expires) or
given (`token=`; once it expires, calls raise TokenExpired). Every call has a deadline
(`timeout`). UNAVAILABLE, and CANCELLED this client did not cause, are retried with
exponential backoff and full jitter, `retries` times, only where repeating is safe: reads,
lists, deletes, and writes with a condition (`if_version`); an unconditional put is never
repeated blindly. Batches larger than the server's limits (1000 keys, 4 MiB) are split and
their results merged in request order; the all-or-nothing guarantee of a batch then holds
per chunk.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import grpc
import jwt
from google.protobuf import duration_pb2, json_format, struct_pb2

from tkv.auth.v1 import auth_pb2, auth_pb2_grpc
from tkv.kv.v1 import kv_pb2 as kv1_pb2
from tkv.kv.v1 import kv_pb2_grpc as kv1_pb2_grpc
from tkv.kv.v2 import kv_pb2, kv_pb2_grpc

from .errors import TkvError, TokenExpired, Unauthenticated, from_rpc_error

# The server's defaults (docs/api.md, "Limits": 1000 keys and 4 MiB per request); chunks stay below both.
MAX_BATCH_KEYS = 1000
MAX_REQUEST_BYTES = 4 * 1024 * 1024 - 64 * 1024
# Log in again this long before the token expires.
REFRESH_BEFORE_SECONDS = 60
T = TypeVar("T")

# Worth another try where repeating is safe. CANCELLED reaches this client only from the
# other side (a cancel of our own raises asyncio.CancelledError instead): gRPC's server core
# sheds calls its process has not taken up yet once 1,000 wait, with CANCELLED, and such a
# call never ran (docs/operations.md).
RETRIED_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED})


@dataclass(frozen=True)
class Pair:
    key: str
    value: Any  # the JSON value; None when listed with keys_only
    version: int
    create_version: int
    owner: str
    update_time: datetime
    expire_time: datetime | None

    @classmethod
    def from_proto(cls, pair: kv_pb2.Pair) -> Pair:
        return cls(
            key=pair.key,
            value=_natural(json_format.MessageToDict(pair.value)) if pair.HasField("value") else None,
            version=pair.version,
            create_version=pair.create_version,
            owner=pair.owner,
            update_time=pair.update_time.ToDatetime(UTC),
            expire_time=pair.expire_time.ToDatetime(UTC) if pair.HasField("expire_time") else None,
        )


@dataclass(frozen=True)
class Grant:
    namespace: str  # the owner's login
    grantee: str
    prefix: str  # "" = the whole namespace
    role: str  # READER or WRITER
    create_time: datetime

    @classmethod
    def from_proto(cls, grant: kv_pb2.Grant) -> Grant:
        return cls(
            namespace=grant.namespace,
            grantee=grant.grantee,
            prefix=grant.prefix,
            role=kv_pb2.Role.Name(grant.role),
            create_time=grant.create_time.ToDatetime(UTC),
        )


@dataclass(frozen=True)
class Event:
    type: str  # PUT, DELETE or EXPIRE
    pair: Pair  # its version is the event's revision


def _natural(value: Any) -> Any:
    """JSON numbers travel as doubles: 42.0 comes back as 42, as it was most likely sent."""
    if isinstance(value, float) and value.is_integer() and abs(value) <= 2**53:
        return int(value)
    if isinstance(value, dict):
        return {key: _natural(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_natural(item) for item in value]
    return value


def _value(native: Any) -> struct_pb2.Value:
    return json_format.ParseDict(native, struct_pb2.Value())


def _duration(seconds: float) -> duration_pb2.Duration:
    return duration_pb2.Duration(seconds=int(seconds), nanos=round(seconds % 1 * 1e9))


def chunks(items: Sequence[T], size_of: Callable[[T], int]) -> Iterable[Sequence[T]]:
    """`items` cut into runs of at most MAX_BATCH_KEYS whose sizes add up to at most
    MAX_REQUEST_BYTES (an item larger than that alone goes alone; the server judges it)."""
    start, size = 0, 0
    for i, item in enumerate(items):
        item_size = size_of(item)
        if i > start and (i - start >= MAX_BATCH_KEYS or size + item_size > MAX_REQUEST_BYTES):
            yield items[start:i]
            start, size = i, 0
        size += item_size
    if start < len(items):
        yield items[start:]


class AsyncClient:
    def __init__(
        self,
        target: str = "127.0.0.1:8080",
        *,
        login: str | None = None,
        password: str | None = None,
        token: str | None = None,
        timeout: float = 10.0,
        retries: int = 4,
        backoff: float = 0.1,
        max_backoff: float = 2.0,
        channel: grpc.aio.Channel | None = None,
        auth_target: str | None = None,
    ):
        """`target` serves both services (the gateway does); without the gateway, `target`
        is kv_svc and `auth_target` auth_svc. `channel` overrides `target` (TLS, options).
        Give `login` and `password`, or a `token`."""
        self._channel = channel or grpc.aio.insecure_channel(target)
        self._auth_channel = grpc.aio.insecure_channel(auth_target) if auth_target else None
        self._auth = auth_pb2_grpc.AuthServiceStub(self._auth_channel or self._channel)
        self._kv1 = kv1_pb2_grpc.KeyValueServiceStub(self._channel)
        self._kv = kv_pb2_grpc.KeyValueServiceStub(self._channel)
        self._login, self._password = login, password
        self._token = token
        self._timeout, self._retries = timeout, retries
        self._backoff, self._max_backoff = backoff, max_backoff
        self._login_lock = asyncio.Lock()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()
        if self._auth_channel is not None:
            await self._auth_channel.close()

    # Tokens ---------------------------------------------------------------------------

    @property
    def token(self) -> str | None:
        return self._token

    def _expires_at(self) -> float:
        claims = jwt.decode(self._token, options={"verify_signature": False})
        return float(claims.get("exp", 0))

    async def _metadata(self) -> list[tuple[str, str]]:
        async with self._login_lock:
            stale = self._token is None or self._expires_at() - time.time() < REFRESH_BEFORE_SECONDS
            if stale and self._login is not None and self._password is not None:
                await self.log_in()
            elif self._token is None:
                raise Unauthenticated(grpc.StatusCode.UNAUTHENTICATED, "no token: give login and password, or a token")
            elif self._expires_at() <= time.time():
                raise TokenExpired(
                    grpc.StatusCode.UNAUTHENTICATED,
                    "the token has expired and the client holds no credentials to log in again",
                    reason="TOKEN_EXPIRED",
                )
        return [("authorization", f"Bearer {self._token}")]

    async def log_in(self) -> str:
        """Logs in with the client's credentials; returns the new token."""
        request = auth_pb2.LoginRequest(login=self._login or "", password=self._password or "")
        response = await self._once(self._auth.Login, request, [])
        self._token = response.token
        return self._token

    # The call path ----------------------------------------------------------------------

    async def _once(self, method, request, metadata) -> Any:
        try:
            return await method(request, metadata=metadata, timeout=self._timeout)
        except grpc.aio.AioRpcError as error:
            raise from_rpc_error(error) from None

    async def _call(self, method, request, *, safe: bool, authenticated: bool = True) -> Any:
        """One call with a deadline; RETRIED_CODES retried with backoff when `safe`; a token
        the server calls expired is renewed once when the client holds credentials."""
        attempt, relogged = 0, False
        while True:
            metadata = await self._metadata() if authenticated else []
            try:
                return await self._once(method, request, metadata)
            except TkvError as error:
                if error.reason == "TOKEN_EXPIRED" and self._password is not None and not relogged:
                    self._token, relogged = None, True
                    continue
                if error.code not in RETRIED_CODES or not safe or attempt >= self._retries:
                    raise
            await asyncio.sleep(random.uniform(0, min(self._max_backoff, self._backoff * 2**attempt)))
            attempt += 1

    async def _each_chunk(self, items: Sequence[T], size_of, call: Callable[[Sequence[T]], Awaitable[Any]]) -> list:
        return [await call(chunk) for chunk in chunks(items, size_of)]

    # Accounts (tkv.auth.v1) --------------------------------------------------------------

    async def register(self, login: str, password: str, name: str, surname: str) -> str:
        request = auth_pb2.RegisterRequest(login=login, password=password, name=name, surname=surname)
        return (await self._call(self._auth.Register, request, safe=False, authenticated=False)).message

    async def log_out(self) -> None:
        await self._call(self._auth.Logout, auth_pb2.LogoutRequest(), safe=True)
        self._token = None

    async def log_out_everywhere(self) -> None:
        await self._call(self._auth.LogoutAll, auth_pb2.LogoutAllRequest(), safe=True)
        self._token = None

    async def change_password(self, old_password: str, new_password: str) -> None:
        request = auth_pb2.ChangePasswordRequest(old_password=old_password, new_password=new_password)
        await self._call(self._auth.ChangePassword, request, safe=False)
        self._password = new_password if self._password is not None else None
        self._token = None

    async def delete_account(self, password: str) -> None:
        await self._call(self._auth.DeleteAccount, auth_pb2.DeleteAccountRequest(password=password), safe=False)
        self._token = None

    # Pairs (tkv.kv.v2) -------------------------------------------------------------------

    async def get(self, key: str, *, namespace: str = "me") -> Pair:
        """One pair; NotFound if it is absent."""
        request = kv_pb2.GetPairRequest(namespace=namespace, key=key)
        return Pair.from_proto(await self._call(self._kv.GetPair, request, safe=True))

    async def get_many(self, keys: Sequence[str], *, namespace: str = "me") -> tuple[list[Pair], list[str]]:
        """The pairs found in request order, and the missing keys."""

        async def get_chunk(part: Sequence[str]):
            request = kv_pb2.BatchGetPairsRequest(namespace=namespace, keys=part)
            return await self._call(self._kv.BatchGetPairs, request, safe=True)

        answers = await self._each_chunk(keys, lambda key: len(key.encode()) + 4, get_chunk)
        pairs = [Pair.from_proto(pair) for answer in answers for pair in answer.pairs]
        return pairs, [key for answer in answers for key in answer.missing_keys]

    async def put(
        self, key: str, value: Any, *, ttl: float | None = None, if_version: int | None = None, namespace: str = "me"
    ) -> int:
        """Creates or replaces a pair; returns the write's revision. `if_version`: 0 = only
        if absent, N = only if its version is N (VersionMismatch otherwise)."""
        request = kv_pb2.PutPairRequest(namespace=namespace, key=key, value=_value(value))
        if ttl is not None:
            request.ttl.CopyFrom(_duration(ttl))
        if if_version is not None:
            request.expected_version = if_version
        return (await self._call(self._kv.PutPair, request, safe=if_version is not None)).revision

    async def put_many(
        self, pairs: Mapping[str, Any] | Sequence[tuple[str, Any]], *, ttl: float | None = None, namespace: str = "me"
    ) -> list[int]:
        """Writes every pair, in chunks within the server's limits (each chunk all or
        nothing); returns each chunk's revision. Never retried: unconditional writes."""
        items = [
            kv_pb2.PairToPut(key=key, value=_value(value), ttl=_duration(ttl) if ttl is not None else None)
            for key, value in (pairs.items() if isinstance(pairs, Mapping) else pairs)
        ]

        async def put_chunk(part):
            request = kv_pb2.BatchPutPairsRequest(namespace=namespace, pairs=part)
            return (await self._call(self._kv.BatchPutPairs, request, safe=False)).revision

        return await self._each_chunk(items, lambda item: item.ByteSize() + 4, put_chunk)

    async def delete(self, key: str, *, if_version: int | None = None, namespace: str = "me") -> int:
        """Deletes a pair (NotFound if absent); returns the revision."""
        request = kv_pb2.DeletePairRequest(namespace=namespace, key=key)
        if if_version is not None:
            request.expected_version = if_version
        return (await self._call(self._kv.DeletePair, request, safe=True)).revision

    async def delete_many(self, keys: Sequence[str], *, namespace: str = "me") -> list[str]:
        """Deletes the pairs that exist, in chunks; returns the keys that were absent."""

        async def delete_chunk(part: Sequence[str]):
            request = kv_pb2.BatchDeletePairsRequest(namespace=namespace, keys=part)
            return list((await self._call(self._kv.BatchDeletePairs, request, safe=True)).missing_keys)

        return [
            key
            for missing in await self._each_chunk(keys, lambda k: len(k.encode()) + 4, delete_chunk)
            for key in missing
        ]

    async def list(
        self, prefix: str = "", *, keys_only: bool = False, page_size: int = 1000, namespace: str = "me"
    ) -> AsyncIterator[Pair]:
        """Every pair under `prefix` in key order, a page at a time."""
        token = ""
        while True:
            request = kv_pb2.ListPairsRequest(
                namespace=namespace, prefix=prefix, page_size=page_size, page_token=token, keys_only=keys_only
            )
            page = await self._call(self._kv.ListPairs, request, safe=True)
            for pair in page.pairs:
                yield Pair.from_proto(pair)
            token = page.next_page_token
            if not token:
                return

    async def watch(
        self,
        prefix: str = "",
        *,
        key: str | None = None,
        start_revision: int = 0,
        keys_only: bool = False,
        namespace: str = "me",
        resume: bool = True,
    ) -> AsyncIterator[Event]:
        """The changes under `prefix` (or to `key`) as they happen. With `resume`, a stream
        that breaks (UNAVAILABLE or CANCELLED, or ended for reading too slowly) is opened again from the
        last revision seen, so no change is lost or repeated."""
        last, attempt = start_revision, 0
        while True:
            request = kv_pb2.WatchRequest(namespace=namespace, start_revision=last, keys_only=keys_only)
            if key is not None:
                request.key = key
            else:
                request.prefix = prefix
            stream = self._kv.Watch(request, metadata=await self._metadata())
            try:
                async for message in stream:
                    attempt = 0
                    for event in message.events:
                        yield Event(kv_pb2.Event.Type.Name(event.type), Pair.from_proto(event.pair))
                    last = max(last, message.revision)
                return
            except grpc.aio.AioRpcError as rpc_error:
                error = from_rpc_error(rpc_error)
                retryable = error.code in RETRIED_CODES or error.reason == "WATCH_FELL_BEHIND"
                if not resume or not retryable or attempt >= self._retries:
                    raise error from None
            finally:
                stream.cancel()
            await asyncio.sleep(random.uniform(0, min(self._max_backoff, self._backoff * 2**attempt)))
            attempt += 1

    # Grants -----------------------------------------------------------------------------

    async def grant(self, grantee: str, role: str = "READER", *, prefix: str = "") -> Grant:
        """Shares the caller's namespace (or `prefix` of it) with `grantee`: READER or WRITER.
        A second grant on the same prefix replaces the role."""
        request = kv_pb2.CreateGrantRequest(
            namespace="me", grantee=grantee, role=kv_pb2.Role.Value(role), prefix=prefix
        )
        return Grant.from_proto(await self._call(self._kv.CreateGrant, request, safe=True))

    async def revoke(self, grantee: str, *, prefix: str = "") -> None:
        """Revokes the grant on `prefix` (NotFound if there is none); the grantee's watches
        that relied on it end."""
        request = kv_pb2.DeleteGrantRequest(namespace="me", grantee=grantee, prefix=prefix)
        await self._call(self._kv.DeleteGrant, request, safe=True)

    async def grants(self, *, received: bool = False) -> list[Grant]:
        """The grants given on the caller's namespace, or with `received` those the caller
        holds on other users' namespaces."""
        request = kv_pb2.ListGrantsRequest(namespace="" if received else "me")
        answer = await self._call(self._kv.ListGrants, request, safe=True)
        return [Grant.from_proto(grant) for grant in answer.grants]

    # The original API (tkv.kv.v1, the shared store) --------------------------------------

    async def read(self, keys: Sequence[str]) -> dict[str, Any]:
        """v1 Read: every key must exist (NotFound names the absent ones)."""

        async def read_chunk(part: Sequence[str]):
            answer = await self._call(self._kv1.Read, kv1_pb2.ReadRequest(keys=part), safe=True)
            return _natural(json_format.MessageToDict(answer.data))

        merged: dict[str, Any] = {}
        for part in await self._each_chunk(keys, lambda key: len(key.encode()) + 4, read_chunk):
            merged.update(part)
        return {key: merged[key] for key in keys}

    async def write(self, data: Mapping[str, Any]) -> list[str]:
        """v1 Write (insert only); returns the keys skipped because they existed. Never
        retried: a repeat would report its own keys as skipped."""
        items = list(data.items())

        async def write_chunk(part):
            request = kv1_pb2.WriteRequest()
            for key, value in part:
                request.data.fields[key].CopyFrom(_value(value))
            return list((await self._call(self._kv1.Write, request, safe=False)).skipped_keys)

        size = lambda item: len(item[0].encode()) + _value(item[1]).ByteSize() + 8  # noqa: E731
        return [key for skipped in await self._each_chunk(items, size, write_chunk) for key in skipped]
