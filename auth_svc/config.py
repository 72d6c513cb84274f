"""auth_svc settings, read once from the environment (see README for every variable)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from tkv_common.server import ServerSettings
from tkv_common.settings import Env
from tkv_common.tarantool import TarantoolSettings
from tkv_common.tokens import TokenSettings

from . import client_address


@dataclass(frozen=True)
class PasswordPolicy:
    """argon2id cost. Defaults are OWASP's minimum for argon2id: m=19 MiB, t=2, p=1."""

    memory_kib: int
    time_cost: int
    parallelism: int
    # Hashes computed at once (each takes memory_kib); more wait in a queue...
    workers: int
    # ...of at most this many, beyond which a login or registration is refused at once
    # (RESOURCE_EXHAUSTED, retry after 1 s) instead of piling up.
    max_pending: int


@dataclass(frozen=True)
class LoginThrottle:
    """Brute-force protection (tarantool/tkv/logins.lua, docs/security.md)."""

    # Per login and client address: consecutive failures before that address is locked out
    # of the login, and the lock (doubling with each further failure, up to the maximum).
    max_failures: int
    lock_seconds: int
    max_lock_seconds: int
    # Per login, over every address: past this many failures in a window, one attempt per
    # interval (slows a spread-out attack, locks nobody out).
    login_failures: int
    login_window_seconds: int
    login_interval_seconds: int

    def as_limits(self) -> dict[str, int]:
        """The limits as tkv.auth_login_check takes them."""
        return dict(vars(self))


@dataclass(frozen=True)
class AuthSettings:
    server: ServerSettings
    tarantool: TarantoolSettings
    tokens: TokenSettings
    token_ttl_seconds: int
    passwords: PasswordPolicy
    throttle: LoginThrottle
    # Peers whose x-forwarded-for names the client (besides the worker Unix sockets).
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]

    @classmethod
    def from_env(cls, environ=None) -> AuthSettings:
        env = Env(environ, service="auth_svc")
        return cls(
            server=ServerSettings.from_env(
                env,
                service="auth_svc",
                listen_var="TKV_AUTH_LISTEN",
                metrics_var="TKV_AUTH_METRICS_LISTEN",
            ),
            tarantool=TarantoolSettings.from_env(env),
            tokens=TokenSettings.from_env(env),
            token_ttl_seconds=env.int("TKV_JWT_TTL_SECONDS"),
            passwords=PasswordPolicy(
                memory_kib=env.int("TKV_ARGON2_MEMORY_KIB"),
                time_cost=env.int("TKV_ARGON2_TIME_COST"),
                parallelism=env.int("TKV_ARGON2_PARALLELISM"),
                workers=env.int("TKV_ARGON2_WORKERS"),
                max_pending=env.int("TKV_ARGON2_MAX_PENDING"),
            ),
            throttle=LoginThrottle(
                max_failures=env.int("TKV_LOGIN_MAX_FAILURES"),
                lock_seconds=env.int("TKV_LOGIN_LOCK_SECONDS"),
                max_lock_seconds=env.int("TKV_LOGIN_MAX_LOCK_SECONDS"),
                login_failures=env.int("TKV_LOGIN_SLOW_AFTER_FAILURES"),
                login_window_seconds=env.int("TKV_LOGIN_SLOW_WINDOW_SECONDS"),
                login_interval_seconds=env.int("TKV_LOGIN_SLOW_INTERVAL_SECONDS"),
            ),
            trusted_proxies=client_address.proxies_from_env(env),
        )
