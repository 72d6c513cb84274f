"""argon2id password hashing, off the event loop in a bounded thread pool.

argon2-cffi releases the GIL while hashing, so `workers` threads use that many cores
while the event loop keeps serving other calls. At most `max_pending` hashes wait or run
at once: past that the call is refused (RESOURCE_EXHAUSTED) instead of queueing without
bound, so a login storm cannot exhaust memory or starve the other RPCs.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from concurrent.futures import ThreadPoolExecutor

from passlib.hash import argon2

from tkv_common import metrics
from tkv_common.errors import ResourceExhausted

from .config import PasswordPolicy

PENDING = metrics.Gauge(
    metrics.REGISTRY,
    "tkv_auth_password_hashes_pending",
    "argon2 hashes waiting for or running in the hashing threads (refused past TKV_ARGON2_MAX_PENDING).",
)
HASH_SECONDS = metrics.Histogram(
    metrics.REGISTRY,
    "tkv_auth_password_hash_seconds",
    "Time a password hash or check took, queueing included.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


class PasswordHasher:
    def __init__(self, policy: PasswordPolicy):
        self._argon2 = argon2.using(
            type="ID", memory_cost=policy.memory_kib, rounds=policy.time_cost, parallelism=policy.parallelism
        )
        self._pool = ThreadPoolExecutor(max_workers=policy.workers, thread_name_prefix="argon2")
        self._max_pending = policy.max_pending
        self._pending = 0
        # Verified against when the login does not exist, so that case costs the same
        # work as a wrong password (same parameters, so the same time).
        self._decoy_hash = self._argon2.hash(secrets.token_urlsafe(16))
        PENDING.set_function(lambda: self._pending)

    def ensure_capacity(self) -> None:
        """HASHING_BUSY now if a hash would be refused: lets a caller refuse before it does
        anything else (a login, before it counts the attempt)."""
        if self._pending >= self._max_pending:
            raise ResourceExhausted(
                "too many password checks in progress, retry shortly", reason="HASHING_BUSY", retry_after_seconds=1
            )

    async def _run(self, function, *args):
        self.ensure_capacity()
        self._pending += 1
        started = time.perf_counter()
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, function, *args)
        finally:
            self._pending -= 1
            HASH_SECONDS.observe(time.perf_counter() - started)

    async def hash(self, password: str) -> str:
        return await self._run(self._argon2.hash, password)

    async def verify(self, password: str, password_hash: str | None) -> bool:
        """True only for a matching hash; None (no such account) checks the decoy and fails."""
        target = self._decoy_hash if password_hash is None else password_hash
        matches = await self._run(self._argon2.verify, password, target)
        return matches and password_hash is not None

    def needs_update(self, password_hash: str) -> bool:
        """True when the hash was made with other parameters than the current policy."""
        return self._argon2.needs_update(password_hash)
