"""Request ids: one per call, so that a user's bug report leads to the log lines.

The gateway gives every request one (Envoy's `x-request-id`, a UUID, also returned to
HTTP clients in the response headers) and passes it on as gRPC metadata. A call that
arrives without one (a gRPC client talking to a service directly) gets one here. The id
is on every log line written while the call runs (tkv_common/logs.py), in the `request_id`
entry of every error's ErrorInfo.metadata, and sent back in the response headers.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from contextvars import ContextVar

HEADER = "x-request-id"
# What a caller's id may look like: Envoy's UUIDs and the usual trace-style ids. Anything
# else (too long, other characters: a log-injection attempt) is replaced by a new id.
_ACCEPTED = re.compile(r"[A-Za-z0-9._:-]{1,128}")

current: ContextVar[str | None] = ContextVar("request_id", default=None)


def from_metadata(metadata: Iterable[tuple[str, str | bytes]] | None) -> str:
    """The caller's x-request-id if it is acceptable, else a new one."""
    for key, value in metadata or ():
        if key == HEADER and isinstance(value, str) and _ACCEPTED.fullmatch(value):
            return value
    return str(uuid.uuid4())
