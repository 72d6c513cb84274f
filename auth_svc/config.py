"""auth_svc settings, read once from the environment (see README for every variable)."""

from __future__ import annotations

import ipaddress
import os
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
        env = Env(environ)
        return cls(
            server=ServerSettings.from_env(
                env,
                service="auth_svc",
                listen_var="TKV_AUTH_LISTEN",
                default_listen="127.0.0.1:50051",
                metrics_var="TKV_AUTH_METRICS_LISTEN",
                default_metrics="127.0.0.1:9101",
            ),
            tarantool=TarantoolSettings.from_env(env, user="tkv_auth"),
            tokens=TokenSettings.from_env(env),
            token_ttl_seconds=env.int("TKV_JWT_TTL_SECONDS", 30 * 60),
            passwords=PasswordPolicy(
                memory_kib=env.int("TKV_ARGON2_MEMORY_KIB", 19 * 1024, minimum=8),
                time_cost=env.int("TKV_ARGON2_TIME_COST", 2),
                parallelism=env.int("TKV_ARGON2_PARALLELISM", 1),
                workers=(workers := env.int("TKV_ARGON2_WORKERS", os.cpu_count() or 1)),
                max_pending=env.int("TKV_ARGON2_MAX_PENDING", 32 * workers),
            ),
            throttle=LoginThrottle(
                max_failures=env.int("TKV_LOGIN_MAX_FAILURES", 10),
                lock_seconds=env.int("TKV_LOGIN_LOCK_SECONDS", 30),
                max_lock_seconds=env.int("TKV_LOGIN_MAX_LOCK_SECONDS", 900),
                login_failures=env.int("TKV_LOGIN_SLOW_AFTER_FAILURES", 100),
                login_window_seconds=env.int("TKV_LOGIN_SLOW_WINDOW_SECONDS", 3600),
                login_interval_seconds=env.int("TKV_LOGIN_SLOW_INTERVAL_SECONDS", 1),
            ),
            trusted_proxies=client_address.proxies_from_env(env),
        )
