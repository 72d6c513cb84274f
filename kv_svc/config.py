"""kv_svc settings, read once from the environment (see README for every variable)."""

from __future__ import annotations

from dataclasses import dataclass

from tkv_common.server import ServerSettings
from tkv_common.settings import Env
from tkv_common.tarantool import TarantoolSettings
from tkv_common.tokens import TokenSettings


@dataclass(frozen=True)
class Limits:
    max_batch_keys: int
    max_key_bytes: int
    # Objects/arrays nested inside one value. Each JSON object level costs three protobuf
    # message levels, and protobuf parsers (Python's, Envoy's) stop at 100: 32 is the
    # deepest value a Python client can still read back inside a ReadResponse.
    max_value_depth: int


@dataclass(frozen=True)
class Quotas:
    """Limits that protect everyone (docs/api.md, "Quotas and storage full"), passed to every pair write."""

    # Per user, over the pairs they own in any namespace.
    max_pairs: int
    max_bytes: int
    # Pair writes stop once Tarantool's memory for data passes this share of its limit.
    high_water_percent: int

    def as_storage_limits(self) -> dict[str, float]:
        return {"max_pairs": self.max_pairs, "max_bytes": self.max_bytes, "high_water": self.high_water_percent / 100}


@dataclass(frozen=True)
class V2Limits:
    """Bounds of the v2 API's own request fields."""

    min_ttl_seconds: int
    max_ttl_seconds: int
    default_page_size: int
    max_page_size: int


@dataclass(frozen=True)
class WatchSettings:
    """Watch (docs/api.md, "Watch"; kv_svc/watching.py)."""

    max_per_user: int  # open watches per user, over every kv_svc process
    buffer_bytes: int  # messages a watch may hold for a slow client before it is ended
    progress_seconds: float  # an idle watch gets a progress message this often
    poll_seconds: float  # the longest one long poll waits in Tarantool
    batch_events: int  # events read per storage call (more follow at once)
    # While changes keep coming, the follower pauses between polls to stay within
    # `message_rate` messages a second to its watches, for at most `coalesce_seconds`.
    message_rate: float
    coalesce_seconds: float


@dataclass(frozen=True)
class KvSettings:
    server: ServerSettings
    tarantool: TarantoolSettings
    tokens: TokenSettings
    limits: Limits
    quotas: Quotas
    v2: V2Limits
    watch: WatchSettings

    @classmethod
    def from_env(cls, environ=None) -> KvSettings:
        env = Env(environ, service="kv_svc")
        return cls(
            server=ServerSettings.from_env(
                env,
                service="kv_svc",
                listen_var="TKV_KV_LISTEN",
                metrics_var="TKV_KV_METRICS_LISTEN",
            ),
            tarantool=TarantoolSettings.from_env(env),
            tokens=TokenSettings.from_env(env),
            limits=Limits(
                max_batch_keys=env.int("TKV_KV_MAX_BATCH_KEYS"),
                max_key_bytes=env.int("TKV_KV_MAX_KEY_BYTES"),
                max_value_depth=env.int("TKV_KV_MAX_VALUE_DEPTH"),
            ),
            quotas=Quotas(
                max_pairs=env.int("TKV_KV_QUOTA_PAIRS"),
                max_bytes=env.int("TKV_KV_QUOTA_BYTES"),
                high_water_percent=env.percent("TKV_KV_STORAGE_HIGH_WATER_PERCENT"),
            ),
            v2=V2Limits(
                min_ttl_seconds=env.int("TKV_KV_MIN_TTL_SECONDS"),
                max_ttl_seconds=env.int("TKV_KV_MAX_TTL_SECONDS"),
                default_page_size=env.int("TKV_KV_DEFAULT_PAGE_SIZE"),
                max_page_size=env.int("TKV_KV_MAX_PAGE_SIZE"),
            ),
            watch=WatchSettings(
                max_per_user=env.int("TKV_KV_MAX_WATCHES_PER_USER"),
                buffer_bytes=env.int("TKV_KV_WATCH_BUFFER_BYTES"),
                progress_seconds=env.float("TKV_KV_WATCH_PROGRESS_SECONDS"),
                poll_seconds=env.float("TKV_KV_WATCH_POLL_SECONDS"),
                batch_events=env.int("TKV_KV_WATCH_BATCH_EVENTS"),
                message_rate=env.float("TKV_KV_WATCH_MESSAGE_RATE"),
                coalesce_seconds=env.float("TKV_KV_WATCH_COALESCE_SECONDS"),
            ),
        )
