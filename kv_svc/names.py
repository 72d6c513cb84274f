"""The name rules of v2 requests (docs/api.md, "v2"): logins, namespaces, and how a name
from a request is shown in a message. One home for the v2 rules (rules_v2.py) and the
sharing rules (sharing.py)."""

from __future__ import annotations

import re

from tkv_common.errors import FieldViolation

from . import messages
from .keys import list_keys

# A login (docs/api.md, "Accounts": 2-64 Latin letters and digits); a namespace is one, `me` or `shared`.
LOGIN = re.compile(r"[A-Za-z0-9]{2,64}")
_NAMESPACE = re.compile(r"me|shared|[A-Za-z0-9]{2,64}")

# The shared namespace as requests name it, and as storage keeps it (tarantool/tkv/access.lua
# M.SHARED; tests/unit/test_storage_contract.py holds the two together).
SHARED = "shared"
STORED_SHARED = ""


def shown(text: str, limit: int = 64) -> str:
    """A name from a request in a message: quoted where needed, cut at `limit` characters."""
    return list_keys([text[:limit] + ("..." if len(text) > limit else "")])


def namespace_violations(namespace: str) -> list[FieldViolation]:
    if _NAMESPACE.fullmatch(namespace):
        return []
    return [FieldViolation("namespace", messages.INVALID_NAMESPACE.format(namespace=shown(namespace)))]


def requested_name(stored_namespace: str) -> str:
    """A namespace as stored ('' or a login in lower case) as a request names it."""
    return SHARED if stored_namespace == STORED_SHARED else stored_namespace
