"""The agent's HTTP endpoint (`GET /state`, `GET /metrics`) and the client its peers use.

Small on purpose: two read-only routes on loopback or the replica set's network, no
framework. A candidate asks every other agent for its node's state before it takes
leadership (tkv_ha/decision.py), as Patroni asks its members over their REST API.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}
Route = Callable[[], Awaitable[tuple[int, str, bytes]]]


class Server:
    def __init__(self, host: str, port: int, routes: dict[str, Route]):
        self._host, self._port, self._routes = host, port, routes
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self._host, self._port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), 5)
            while (await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b"\n", b""):
                pass
            method, _, rest = request.decode("latin-1").partition(" ")
            path = rest.split(" ", 1)[0].split("?", 1)[0]
            route = self._routes.get(path)
            if method != "GET":
                status, kind, body = 405, "application/json", b'{"message":"only GET is served here"}'
            elif route is None:
                status, kind, body = 404, "application/json", b'{"message":"no such path"}'
            else:
                status, kind, body = await route()
            head = (
                f"HTTP/1.1 {status} {REASONS.get(status, '')}\r\ncontent-type: {kind}\r\n"
                f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
            )
            writer.write(head.encode() + body)
            await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception:
            log.exception("agent HTTP request failed")
        finally:
            writer.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


async def get_json(address: str, path: str, timeout: float) -> dict | None:
    """GET http://address/path as JSON; None if it does not answer 200 in time."""
    host, _, port = address.rpartition(":")
    writer = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host.strip("[]"), int(port))
            writer.write(f"GET {path} HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\n\r\n".encode())
            await writer.drain()
            reply = await reader.read()
    except (OSError, TimeoutError):
        return None
    finally:
        if writer is not None:
            writer.close()
    head, _, body = reply.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None
