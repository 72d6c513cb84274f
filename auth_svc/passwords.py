"""argon2id password hashing, off the event loop in a bounded thread pool.

argon2-cffi releases the GIL while hashing, so `workers` threads use that many cores
while the event loop keeps serving other calls. At most `max_pending` hashes wait or run
at once: past that the call is refused (RESOURCE_EXHAUSTED) instead of queueing without
bound, so a login storm cannot exhaust memory or starve the other RPCs. A login takes its
place in the queue (`slot`) before its attempt is counted: one refused with HASHING_BUSY is
never counted toward a lock, and one that was counted is never then refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Iterator
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
        """HASHING_BUSY now if a hash would be refused."""
        if self._pending >= self._max_pending:
            raise ResourceExhausted(
                "too many password checks in progress, retry shortly", reason="HASHING_BUSY", retry_after_seconds=1
            )

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """A place in the queue, taken now (HASHING_BUSY if there is none) and held to the
        end of the block; the hashes inside it pass `held=True` and wait for no other."""
        self.ensure_capacity()
        self._pending += 1
        try:
            yield
        finally:
            self._pending -= 1

    async def _run(self, function, *args, held: bool):
        with contextlib.nullcontext() if held else self.slot():
            started = time.perf_counter()
            try:
                return await asyncio.get_running_loop().run_in_executor(self._pool, function, *args)
            finally:
                HASH_SECONDS.observe(time.perf_counter() - started)

    async def hash(self, password: str, *, held: bool = False) -> str:
        return await self._run(self._argon2.hash, password, held=held)

    async def verify(self, password: str, password_hash: str | None, *, held: bool = False) -> bool:
        """True only for a matching hash; None (no such account) checks the decoy and fails."""
        target = self._decoy_hash if password_hash is None else password_hash
        matches = await self._run(self._argon2.verify, password, target, held=held)
        return matches and password_hash is not None

    def needs_update(self, password_hash: str) -> bool:
        """True when the hash was made with other parameters than the current policy."""
        return self._argon2.needs_update(password_hash)
