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
from collections.abc import AsyncIterator, Iterator
from typing import Any

from .aio import AsyncClient, Event, Pair


class Client:
    """Every method of AsyncClient, blocking; list() and watch() are plain iterators."""

    def __init__(self, target: str = "127.0.0.1:8080", **options: Any):
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

    def get(self, key: str, **options: Any) -> Pair:
        return self._run(self._client.get(key, **options))

    def get_many(self, keys, **options: Any) -> tuple[list[Pair], list[str]]:
        return self._run(self._client.get_many(keys, **options))

    def put(self, key: str, value: Any, **options: Any) -> int:
        return self._run(self._client.put(key, value, **options))

    def put_many(self, pairs, **options: Any) -> list[int]:
        return self._run(self._client.put_many(pairs, **options))

    def delete(self, key: str, **options: Any) -> int:
        return self._run(self._client.delete(key, **options))

    def delete_many(self, keys, **options: Any) -> list[str]:
        return self._run(self._client.delete_many(keys, **options))

    def list(self, prefix: str = "", **options: Any) -> Iterator[Pair]:
        return self._iterate(self._client.list(prefix, **options))

    def watch(self, prefix: str = "", **options: Any) -> Iterator[Event]:
        return self._iterate(self._client.watch(prefix, **options))

    def grant(self, grantee: str, role: str = "READER", **options: Any) -> None:
        self._run(self._client.grant(grantee, role, **options))

    def revoke(self, grantee: str, **options: Any) -> None:
        self._run(self._client.revoke(grantee, **options))

    def read(self, keys) -> dict[str, Any]:
        return self._run(self._client.read(keys))

    def write(self, data) -> list[str]:
        return self._run(self._client.write(data))
