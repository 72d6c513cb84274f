"""A tiny HTTP client for the gateway tests (http.client: full control over the wire)."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    raw: bytes

    @property
    def body(self) -> Any:
        return json.loads(self.raw)


def call(
    address: str,
    method: str,
    path: str,
    body: Any = None,
    *,
    token: str | None = None,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
    chunked: bool = False,
    source: str | None = None,
) -> Reply:
    """`source` is the loopback address to connect from (127.0.0.2, ...): to the gateway's
    per-client limits, another client."""
    host, port = address.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=30, source_address=(source, 0) if source else None)
    all_headers = {"content-type": "application/json", **(headers or {})}
    if token is not None:
        all_headers["authorization"] = f"Bearer {token}"
    payload = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    try:
        if chunked:
            connection.request(method, path, body=iter([payload]), headers=all_headers, encode_chunked=True)
        else:
            connection.request(method, path, body=payload, headers=all_headers)
        response = connection.getresponse()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        connection.close()


def assert_shape(reply: Reply, status: int, shape: dict[str, type]) -> Any:
    """Status, JSON content type, and exactly these members with these types
    (clients validate with additionalProperties: false)."""
    assert reply.status == status, (reply.status, reply.raw[:500])
    assert reply.headers.get("content-type", "").startswith("application/json"), reply.headers
    body = reply.body
    assert isinstance(body, dict) and set(body) == set(shape), body
    for name, kind in shape.items():
        assert isinstance(body[name], kind), (name, body[name])
    return body


class Stream:
    """A streaming answer (Watch through the gateway): the status and headers at once, then
    one JSON message per line as the server sends it."""

    def __init__(self, address: str, path: str, body: Any, token: str | None, timeout: float = 30):
        host, port = address.rsplit(":", 1)
        self._connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
        headers = {"content-type": "application/json"}
        if token is not None:
            headers["authorization"] = f"Bearer {token}"
        self._connection.request("POST", path, body=json.dumps(body).encode(), headers=headers)
        self.response = self._connection.getresponse()
        self.status = self.response.status

    def next_message(self) -> Any:
        """The next message, or None once the stream has ended."""
        line = self.response.readline()
        while line == b"\n":
            line = self.response.readline()
        return json.loads(line) if line else None

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *_) -> None:
        self.close()
