"""tkv_client: the Python client of tkv (both APIs over gRPC), synchronous and asyncio.

    from tkv_client import Client
    with Client("127.0.0.1:8080", login="alice", password="...") as tkv:
        tkv.put("greeting", {"text": "hello"}, ttl=3600)

See tkv_client/aio.py for what it does on your behalf (tokens, retries, chunking) and
tkv_client/errors.py for what it raises.
"""

from .aio import AsyncClient, Event, Grant, Pair
from .errors import (
    FieldViolation,
    InvalidArgument,
    NotFound,
    OutOfRange,
    PermissionDenied,
    ResourceExhausted,
    TkvError,
    TokenExpired,
    Unauthenticated,
    Unavailable,
    VersionMismatch,
)
from .sync import Client

__all__ = [
    "AsyncClient",
    "Client",
    "Event",
    "FieldViolation",
    "Grant",
    "InvalidArgument",
    "NotFound",
    "OutOfRange",
    "Pair",
    "PermissionDenied",
    "ResourceExhausted",
    "TkvError",
    "TokenExpired",
    "Unauthenticated",
    "Unavailable",
    "VersionMismatch",
]
