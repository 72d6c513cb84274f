"""Sharing by grant (docs/api.md, "Sharing"): the request rules of CreateGrant, ListGrants
and DeleteGrant. Who may grant (the owner, on their own namespace only), whether the
grantee exists, and what a grant lets its holder do are decided by the stored functions,
in the same call as the data they guard (tarantool/tkv/sharing.lua and access.lua).
"""

from __future__ import annotations

from dataclasses import dataclass

from tkv_common.errors import FieldViolation, InvalidArgument
from tkv_common.tokens import Claims

from . import messages
from .config import Limits
from .keys import KeyRules
from .names import LOGIN, namespace_violations, shown
from .storage import Row, TarantoolAdapter

ROLES = ("READER", "WRITER")


@dataclass(frozen=True)
class Grant:
    namespace: str  # the owner's login in lower case, as stored
    grantee: str  # the grantee's login as registered
    prefix: str
    role: str  # one of ROLES
    create_time: float

    @classmethod
    def from_row(cls, row: Row) -> Grant:
        namespace, grantee, prefix, role, create_time = row
        return cls(namespace, grantee, prefix, role, create_time)


class SharingRules:
    """CreateGrant, ListGrants and DeleteGrant: each request checked whole, then one storage call."""

    def __init__(self, storage: TarantoolAdapter, limits: Limits):
        self._storage = storage
        self._rules = KeyRules(limits)

    def _grantee_violations(self, grantee: str) -> list[FieldViolation]:
        if LOGIN.fullmatch(grantee):
            return []
        return [FieldViolation("grantee", messages.INVALID_GRANTEE.format(grantee=shown(grantee)))]

    def _prefix_violations(self, prefix: str) -> list[FieldViolation]:
        problem = self._rules.key_violation(prefix, "prefix") if prefix else None
        return [FieldViolation("prefix", problem)] if problem else []

    @staticmethod
    def _refuse(violations: list[FieldViolation]) -> None:
        if violations:
            raise InvalidArgument.from_violations(violations, reason="INVALID_GRANT")

    async def create(self, claims: Claims, namespace: str, grantee: str, role: str, prefix: str) -> Grant:
        violations = namespace_violations(namespace) + self._grantee_violations(grantee)
        if role not in ROLES:
            violations.append(FieldViolation("role", messages.INVALID_ROLE))
        self._refuse(violations + self._prefix_violations(prefix))
        return Grant.from_row(await self._storage.create_grant(claims, namespace, grantee, role, prefix))

    async def given(self, claims: Claims, namespace: str) -> list[Grant]:
        self._refuse(namespace_violations(namespace))
        return [Grant.from_row(row) for row in await self._storage.list_grants(claims, namespace)]

    async def received(self, claims: Claims) -> list[Grant]:
        return [Grant.from_row(row) for row in await self._storage.received_grants(claims)]

    async def delete(self, claims: Claims, namespace: str, grantee: str, prefix: str) -> None:
        violations = namespace_violations(namespace) + self._grantee_violations(grantee)
        self._refuse(violations + self._prefix_violations(prefix))
        await self._storage.delete_grant(claims, namespace, grantee, prefix)
