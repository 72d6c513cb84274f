"""The synchronous client: the asyncio one (aio.py) run on an event loop of its own thread,
so that both behave alike (tokens, retries, chunking, errors) from one implementation.

    with Client("127.0.0.1:8080", login="alice", password="...") as tkv:
        tkv.put("config/color", "blue")
        print(tkv.get("config/color").value)
        for pair in tkv.list("config/"):
            ...
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any

import grpc

from .aio import AsyncClient, Event, Grant, Pair


class Client:
    """Every method of AsyncClient, blocking; list() and watch() are plain iterators."""

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
        """As AsyncClient's (aio.py says what each does)."""
        options = {
            "login": login, "password": password, "token": token, "timeout": timeout, "retries": retries,
            "backoff": backoff, "max_backoff": max_backoff, "channel": channel, "auth_target": auth_target,
        }  # fmt: skip
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tkv-client", daemon=True)
        self._thread.start()
        # grpc.aio channels belong to the loop they are made on: make it there.
        self._client: AsyncClient = self._run(self._make(target, options))

    @staticmethod
    async def _make(target: str, options: dict[str, Any]) -> AsyncClient:
        return AsyncClient(target, **options)

    def _run(self, coroutine) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def _iterate(self, iterator: AsyncIterator) -> Iterator:
        while True:
            try:
                yield self._run(anext(iterator))
            except StopAsyncIteration:
                return

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_) -> None:
        self.close()

    def close(self) -> None:
        self._run(self._client.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    @property
    def token(self) -> str | None:
        return self._client.token

    def log_in(self) -> str:
        return self._run(self._client.log_in())

    def register(self, login: str, password: str, name: str, surname: str) -> str:
        return self._run(self._client.register(login, password, name, surname))

    def log_out(self) -> None:
        self._run(self._client.log_out())

    def log_out_everywhere(self) -> None:
        self._run(self._client.log_out_everywhere())

    def change_password(self, old_password: str, new_password: str) -> None:
        self._run(self._client.change_password(old_password, new_password))

    def delete_account(self, password: str) -> None:
        self._run(self._client.delete_account(password))

    def get(self, key: str, *, namespace: str = "me") -> Pair:
        return self._run(self._client.get(key, namespace=namespace))

    def get_many(self, keys: Sequence[str], *, namespace: str = "me") -> tuple[list[Pair], list[str]]:
        return self._run(self._client.get_many(keys, namespace=namespace))

    def put(
        self, key: str, value: Any, *, ttl: float | None = None, if_version: int | None = None, namespace: str = "me"
    ) -> int:
        return self._run(self._client.put(key, value, ttl=ttl, if_version=if_version, namespace=namespace))

    def put_many(
        self, pairs: Mapping[str, Any] | Sequence[tuple[str, Any]], *, ttl: float | None = None, namespace: str = "me"
    ) -> list[int]:
        return self._run(self._client.put_many(pairs, ttl=ttl, namespace=namespace))

    def delete(self, key: str, *, if_version: int | None = None, namespace: str = "me") -> int:
        return self._run(self._client.delete(key, if_version=if_version, namespace=namespace))

    def delete_many(self, keys: Sequence[str], *, namespace: str = "me") -> list[str]:
        return self._run(self._client.delete_many(keys, namespace=namespace))

    def list(
        self, prefix: str = "", *, keys_only: bool = False, page_size: int = 1000, namespace: str = "me"
    ) -> Iterator[Pair]:
        return self._iterate(self._client.list(prefix, keys_only=keys_only, page_size=page_size, namespace=namespace))

    def watch(
        self,
        prefix: str = "",
        *,
        key: str | None = None,
        start_revision: int = 0,
        keys_only: bool = False,
        namespace: str = "me",
        resume: bool = True,
    ) -> Iterator[Event]:
        return self._iterate(
            self._client.watch(
                prefix, key=key, start_revision=start_revision, keys_only=keys_only, namespace=namespace, resume=resume
            )
        )

    def grant(self, grantee: str, role: str = "READER", *, prefix: str = "") -> Grant:
        return self._run(self._client.grant(grantee, role, prefix=prefix))

    def revoke(self, grantee: str, *, prefix: str = "") -> None:
        self._run(self._client.revoke(grantee, prefix=prefix))

    def grants(self, *, received: bool = False) -> list[Grant]:
        return self._run(self._client.grants(received=received))

    def read(self, keys: Sequence[str]) -> dict[str, Any]:
        return self._run(self._client.read(keys))

    def write(self, data: Mapping[str, Any]) -> list[str]:
        return self._run(self._client.write(data))
