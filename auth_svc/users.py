"""Account rules: what a valid registration is, and register / log in / log out."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from tkv_common.errors import FieldViolation, InvalidArgument, Unauthenticated
from tkv_common.tokens import Claims

from .config import LoginThrottle
from .passwords import PasswordHasher
from .storage import AuthStorage
from .tokens import IssuedToken, TokenIssuer

LOGIN_RULE = "must be 2-64 characters, Latin letters (A-Z, a-z) and digits only"
PASSWORD_LENGTH_RULE = "must be 8-64 characters"
PASSWORD_CONTROL_RULE = "must not contain control characters"
NAME_RULE = "must be 2-32 characters, Latin letters and '-', starting and ending with a letter, no '--'"

_LOGIN = re.compile(r"[A-Za-z0-9]{2,64}")
_NAME = re.compile(r"[A-Za-z]+(?:-[A-Za-z]+)*")
_ASCII_LETTERS_DIGITS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
# One wrong answer for "no such login" and "wrong password": which one it was is exactly
# what someone guessing logins wants to learn.
WRONG_CREDENTIALS = "wrong login or password"


@dataclass(frozen=True)
class Registration:
    login: str
    password: str
    name: str
    surname: str


def login_violations(login: str) -> list[FieldViolation]:
    return [] if _LOGIN.fullmatch(login) else [FieldViolation("login", LOGIN_RULE)]


def password_violations(password: str) -> list[FieldViolation]:
    if any(unicodedata.category(ch) == "Cc" for ch in password):
        return [FieldViolation("password", PASSWORD_CONTROL_RULE)]
    missing = []
    if not any("a" <= ch <= "z" for ch in password):
        missing.append("a lowercase Latin letter")
    if not any("A" <= ch <= "Z" for ch in password):
        missing.append("an uppercase Latin letter")
    if not any("0" <= ch <= "9" for ch in password):
        missing.append("a digit")
    if not any(ch.isprintable() and ch not in _ASCII_LETTERS_DIGITS for ch in password):
        missing.append("a special character")
    problems = [] if 8 <= len(password) <= 64 else [PASSWORD_LENGTH_RULE]
    if missing:
        problems.append("must contain " + ", ".join(missing))
    return [FieldViolation("password", "; ".join(problems))] if problems else []


def name_violations(field: str, value: str) -> list[FieldViolation]:
    valid = 2 <= len(value) <= 32 and _NAME.fullmatch(value)
    return [] if valid else [FieldViolation(field, NAME_RULE)]


def registration_violations(r: Registration) -> list[FieldViolation]:
    """Every rule each field breaks, in field order."""
    return [
        *login_violations(r.login),
        *password_violations(r.password),
        *name_violations("name", r.name),
        *name_violations("surname", r.surname),
    ]


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
            raise InvalidArgument.from_violations("invalid registration", violations, reason="INVALID_REGISTRATION")
        password_hash = await self._hasher.hash(registration.password)
        await self._storage.create_user(registration, password_hash)

    async def login(self, login: str, password: str) -> IssuedToken:
        """A token for the right password. A login name with too many consecutive failures
        is locked (LOGIN_THROTTLED) whether or not it exists, so the lock reveals nothing."""
        valid_name = not login_violations(login)
        # A name that breaks the rules cannot exist; it still costs one hash check so
        # every failure takes the same time.
        account = await self._storage.login_check(login) if valid_name else None
        verified = await self._hasher.verify(password, account.password_hash if account else None)
        if account is None or not verified:
            if valid_name:
                await self._storage.login_failed(login, self._throttle)
            raise Unauthenticated(WRONG_CREDENTIALS, reason="INVALID_CREDENTIALS")
        if account.recent_failures:
            await self._storage.login_succeeded(login)
        if self._hasher.needs_update(account.password_hash):
            # OWASP: upgrade a hash made with outdated parameters while the password is at hand.
            await self._storage.set_password_hash(account.login, await self._hasher.hash(password))
        return self._issuer.issue(account.login)

    async def logout(self, claims: Claims) -> None:
        await self._storage.revoke(claims)
