"""Request ids: one per call, so that a user's bug report leads to the log lines.

The gateway gives every request one (Envoy's `x-request-id`, a UUID, returned to the
client in the response headers) and passes it on as gRPC metadata. A call that arrives
without one (a gRPC client talking to a service directly) gets one here. The id is on
every log line written while the call runs (tkv_common/logs.py), in the `request_id` entry
of every error's ErrorInfo.metadata and in an error's trailers.

A successful direct call is not told its id: in the response headers it took a send of its
own per call (~8 % of kv_svc's 10-key Reads in a probe), and in the trailers a header
encoded anew on every call (~3 % in a probe, within this VM's noise). A direct client
that wants to find a successful call in the logs sends its own `x-request-id`.
"""

from __future__ import annotations

import itertools
import re
import secrets
from contextvars import ContextVar

HEADER = "x-request-id"
# What a caller's id may look like: Envoy's UUIDs and the usual trace-style ids. Anything
# else (too long, other characters: a log-injection attempt) is replaced by a new id.
_ACCEPTED = re.compile(r"[A-Za-z0-9._:-]{1,128}")

current: ContextVar[str | None] = ContextVar("request_id", default=None)


# New ids: this process's random prefix and a counter, unique without a random draw per call.
_PREFIX = f"{secrets.token_hex(6)}-"
_COUNTER = itertools.count(1)


def accepted_or_new(caller_id: str | bytes | None) -> str:
    """The caller's id (the first x-request-id it sent) if it is acceptable, else a new one."""
    if isinstance(caller_id, str) and _ACCEPTED.fullmatch(caller_id):
        return caller_id
    return f"{_PREFIX}{next(_COUNTER):08x}"
