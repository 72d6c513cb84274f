"""Account rules: what a valid registration is, and register / log in / log out."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from tkv_common import metrics
from tkv_common.errors import (
    FieldViolation,
    InvalidArgument,
    PermissionDenied,
    TkvError,
    Unauthenticated,
    with_detail,
)
from tkv_common.tokens import Claims

from . import messages
from .config import LoginThrottle
from .passwords import PasswordHasher
from .storage import AuthStorage
from .tokens import IssuedToken, TokenIssuer

# The register rules' lengths, in code points.
LOGIN_LENGTH, PASSWORD_LENGTH, NAME_LENGTH = (2, 64), (8, 64), (2, 32)
_LOGIN_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_NAME_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-")
# A hyphen only between two letters: "Anna-Maria", never "-Anna", "Anna-" or "Anna--Maria".
_NAME = re.compile(r"[A-Za-z]+(?:-[A-Za-z]+)*")
# The password classes the register rules require, by the original's names for them.
_PASSWORD_CLASSES = (
    ("LOWER_CASE", lambda ch: "a" <= ch <= "z"),
    ("UPPER_CASE", lambda ch: "A" <= ch <= "Z"),
    ("DIGITS", lambda ch: "0" <= ch <= "9"),
    # Any printable character that is not an ASCII letter or digit: punctuation, space,
    # or a non-Latin letter.
    ("SPECIAL_SYMBOLS", lambda ch: ch.isprintable() and ch not in _LOGIN_CHARACTERS),
)


@dataclass(frozen=True)
class Registration:
    login: str
    password: str
    name: str
    surname: str


def _length_violations(
    field: str, value: str, low: int, high: int, too_short: str, too_long: str
) -> list[FieldViolation]:
    # Code points, not bytes: "Пароль1!" is 8 characters long.
    if len(value) < low:
        return [FieldViolation(field, too_short)]
    if len(value) > high:
        return [FieldViolation(field, too_long)]
    return []


def login_violations(login: str) -> list[FieldViolation]:
    violations = _length_violations("login", login, *LOGIN_LENGTH, messages.LOGIN_TOO_SHORT, messages.LOGIN_TOO_LONG)
    if not _LOGIN_CHARACTERS.issuperset(login):
        violations.append(FieldViolation("login", messages.LOGIN_CHARACTERS))
    return violations


def password_violations(password: str) -> list[FieldViolation]:
    violations = _length_violations(
        "password", password, *PASSWORD_LENGTH, messages.PASSWORD_TOO_SHORT, messages.PASSWORD_TOO_LONG
    )
    violations += [
        FieldViolation("password", messages.PASSWORD_LACKS.format(name))
        for name, member in _PASSWORD_CLASSES
        if not any(member(ch) for ch in password)
    ]
    # Control characters (TAB, DEL, ...) are refused by the rules: many keyboards and
    # password fields cannot type them, or type them differently.
    if any(unicodedata.category(ch) == "Cc" for ch in password):
        violations.append(FieldViolation("password", messages.PASSWORD_CONTROL))
    return violations


def name_violations(field: str, value: str) -> list[FieldViolation]:
    """The rules of name and surname; each text is followed by the field's name."""
    violations = [
        FieldViolation(field, with_detail(v.description, field))
        for v in _length_violations(field, value, *NAME_LENGTH, messages.INITIAL_TOO_SHORT, messages.INITIAL_TOO_LONG)
    ]
    if not _NAME_CHARACTERS.issuperset(value):
        violations.append(FieldViolation(field, with_detail(messages.INITIAL_CHARACTERS, field)))
    elif value and not _NAME.fullmatch(value):
        detail = f"{field}: a '-' must stand between two letters"
        violations.append(FieldViolation(field, with_detail(messages.INITIAL_CHARACTERS, detail)))
    return violations


def registration_violations(r: Registration) -> list[FieldViolation]:
    """Every rule each field breaks, in field order."""
    return [
        *login_violations(r.login),
        *password_violations(r.password),
        *name_violations("name", r.name),
        *name_violations("surname", r.surname),
    ]


LOGINS = metrics.Counter(
    metrics.REGISTRY,
    "tkv_auth_logins_total",
    "Login attempts by outcome: OK, or the refusal's ErrorInfo reason (INVALID_CREDENTIALS; "
    "LOGIN_THROTTLED: the client is locked out of the login; HASHING_BUSY; ...).",
    ("outcome",),
)


class Accounts:
    """The account operations; the servicer only translates to and from protobuf."""

    def __init__(self, storage: AuthStorage, hasher: PasswordHasher, issuer: TokenIssuer, throttle: LoginThrottle):
        self._storage = storage
        self._hasher = hasher
        self._issuer = issuer
        self._throttle = throttle

    async def register(self, registration: Registration) -> None:
        violations = registration_violations(registration)
        if violations:
            raise InvalidArgument.from_violations(violations, reason="INVALID_REGISTRATION")
        password_hash = await self._hasher.hash(registration.password)
        await self._storage.create_user(registration, password_hash)

    async def login(self, login: str, password: str, client: str) -> IssuedToken:
        """A token for the right password. Too many failures of a login from `client` lock
        that address out of it, and too many from everywhere slow it down (LOGIN_THROTTLED),
        whether or not the login exists, so the lock reveals nothing."""
        try:
            issued = await self._login(login, password, client)
        except TkvError as error:
            LOGINS.labels(error.reason).inc()
            raise
        LOGINS.labels("OK").inc()
        return issued

    async def _login(self, login: str, password: str, client: str) -> IssuedToken:
        # The hashing slot first: a login turned away (HASHING_BUSY) must not bring its
        # name closer to the lock, and one that is counted must get its check.
        with self._hasher.slot():
            return await self._login_in_slot(login, password, client)

    async def _login_in_slot(self, login: str, password: str, client: str) -> IssuedToken:
        valid_name = not login_violations(login)
        # Counted as a failure in the same storage call as the lock check, before the hash:
        # guesses sent at once cannot all pass the check. A name that breaks the rules
        # cannot exist; it still costs one hash check so every failure takes the same time.
        account = await self._storage.login_check(login, client, self._throttle) if valid_name else None
        # A password longer than any registration allows cannot be right (and passlib
        # refuses to hash one past 4 KiB): it is checked against the decoy, like an unknown
        # login, so it fails in the usual time.
        plausible = len(password) <= PASSWORD_LENGTH[1]
        candidate = account.password_hash if account and plausible else None
        verified = await self._hasher.verify(password if plausible else "", candidate, held=True)
        if account is None or not verified:
            raise Unauthenticated(messages.WRONG_CREDENTIALS, reason="INVALID_CREDENTIALS")
        await self._storage.login_succeeded(login, client)
        if self._hasher.needs_update(account.password_hash):
            # OWASP: upgrade a hash made with outdated parameters while the password is at hand.
            await self._storage.set_password_hash(account.login, await self._hasher.hash(password, held=True))
        return self._issuer.issue(account.login, account.account_id, account.token_epoch)

    async def logout(self, claims: Claims) -> None:
        await self._storage.revoke(claims)

    async def _confirm_password(self, claims: Claims, password: str, client: str) -> None:
        """The caller's own password, checked as Login checks one: counted toward the lock
        of this client address first, so a stolen token guesses no faster than Login. The
        caller holds a hashing slot (taken before the attempt is counted, as for Login)."""
        password_hash = await self._storage.password_check(claims, client, self._throttle)
        plausible = len(password) <= PASSWORD_LENGTH[1]
        candidate = password_hash if plausible else None
        if not await self._hasher.verify(password if plausible else "", candidate, held=True):
            # PERMISSION_DENIED, not UNAUTHENTICATED: the token is fine, and clients take a
            # 401 to mean "log in again".
            raise PermissionDenied(messages.WRONG_PASSWORD, reason="WRONG_PASSWORD")

    async def change_password(self, claims: Claims, old_password: str, new_password: str, client: str) -> None:
        """Every token issued before, the presented one included, is refused afterwards."""
        violations = [FieldViolation("new_password", v.description) for v in password_violations(new_password)]
        if violations:
            raise InvalidArgument.from_violations(violations, reason="INVALID_PASSWORD")
        with self._hasher.slot():
            await self._confirm_password(claims, old_password, client)
            new_hash = await self._hasher.hash(new_password, held=True)
        await self._storage.change_password(claims, client, new_hash)

    async def logout_all(self, claims: Claims) -> None:
        await self._storage.logout_all(claims)

    async def delete_account(self, claims: Claims, password: str, client: str) -> int:
        """Returns the number of pairs deleted with the account's namespace."""
        with self._hasher.slot():
            await self._confirm_password(claims, password, client)
        return await self._storage.delete_account(claims, client)
