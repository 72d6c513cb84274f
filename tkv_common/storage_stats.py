"""The store's own figures as gauges (memory used vs its limit, pairs, users, revision,
change-log length), polled from Tarantool's `tkv.storage_stats` every few seconds by each
kv_svc process while it serves. The processes read the same store, so the gauges take the
maximum over processes rather than their sum."""

from __future__ import annotations

import asyncio
import logging
import time

from . import metrics
from .errors import TkvError
from .tarantool import TarantoolClient

log = logging.getLogger(__name__)

POLL_SECONDS = 5.0

# stored function's field -> (gauge name, help)
_FIGURES = {
    "memory_used_bytes": ("tkv_storage_memory_used_bytes", "Tarantool memory used for data (box.slab arena_used)."),
    "memory_limit_bytes": (
        "tkv_storage_memory_limit_bytes",
        "Tarantool's memory limit for data (memtx_memory, TKV_TARANTOOL_MEMORY_BYTES).",
    ),
    "pairs": ("tkv_storage_pairs", "Pairs stored, in every namespace (expired ones until swept)."),
    "users": ("tkv_storage_users", "Registered accounts."),
    "revision": ("tkv_storage_revision", "The store's revision: the last committed change."),
    "oldest_revision": ("tkv_storage_oldest_revision", "The oldest revision the change log still holds (Watch)."),
    "change_log_rows": ("tkv_storage_change_log_rows", "Rows (write transactions) in the change log."),
}
GAUGES = {
    field: metrics.Gauge(metrics.REGISTRY, name, text, aggregate="max") for field, (name, text) in _FIGURES.items()
}
HIGH_WATER = metrics.Gauge(
    metrics.REGISTRY,
    "tkv_storage_high_water_ratio",
    "Share of the memory limit past which pair writes are refused as storage full "
    "(TKV_KV_STORAGE_HIGH_WATER_PERCENT / 100).",
    aggregate="max",
)
UPDATED = metrics.Gauge(
    metrics.REGISTRY,
    "tkv_storage_stats_updated_seconds",
    "Unix time the figures above were last read from Tarantool.",
    aggregate="max",
)


async def poll(storage: TarantoolClient, interval: float = POLL_SECONDS) -> None:
    """Runs until cancelled; a failed poll leaves the last figures (see the timestamp)."""
    failing = False
    while True:
        if not storage.is_connected:
            await asyncio.sleep(0.25)  # the first figures as soon as the store is reachable
            continue
        try:
            _, figures = await storage.call("tkv.storage_stats")
            for field, gauge in GAUGES.items():
                gauge.set(float(figures[field]))
            UPDATED.set(time.time())
            failing = False
        except TkvError:
            pass  # storage went away: health and the call metrics say so; try again later
        except Exception:
            # Not the figures' business to stop the service (a store not yet migrated to
            # schema v10 refuses the call): say so once per failing streak.
            if not failing:
                log.warning("cannot read the store's figures for /metrics", exc_info=True)
            failing = True
        await asyncio.sleep(interval)
