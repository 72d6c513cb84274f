# ruff: noqa: E501
"""Every TKV_* environment variable, once: its name, default, type and meaning.

The services read settings through tkv_common.settings.Env, which takes each default and
bound from here; scripts/run.sh asks `python -m tkv_common.settings`; Tarantool reads
tarantool/tkv/defaults.lua, and the README's settings table is written from this module
(scripts/settings_table.py; tests/unit/test_settings_catalogue.py holds them together).
Nothing else writes a default down.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MiB = 1024 * 1024


@dataclass(frozen=True)
class Computed:
    """A default worked out when read (from the machine or another setting); `shown` says how."""

    shown: str
    value: Callable[[Any], Any]  # given the Env


@dataclass(frozen=True)
class ByService:
    """A default that differs per service (Env(service=...) picks it)."""

    auth_svc: str
    kv_svc: str


# A default string may name other settings ($TKV_DATA_DIR/secrets): their values, as read, stand in.
Default = str | int | float | bool | Computed | ByService | None


@dataclass(frozen=True)
class Setting:
    name: str
    # The Env reader that parses it: str, int, float, percent, path, address, choice,
    # secret; bool for the Lua-only switches ('true' turns one on).
    kind: str
    default: Default  # None: unset (off, or required where the meaning says so)
    meaning: str
    section: str
    # Smallest accepted integer (Python: default 1) or Lua number (0: zero allowed); a float
    # read by Python must be positive.
    minimum: int | None = None
    # Largest accepted integer (Python only), where more cannot work.
    maximum: int | None = None
    choices: tuple[str, ...] = ()
    shown: str | None = None  # how the README shows the default, if not the value itself
    # Read by tarantool/tkv/config.lua: written into tarantool/tkv/defaults.lua.
    lua: bool = False
    # What scripts/run.sh and run-ha.sh give it when unset (`settings shell --stack`).
    stack: str | None = None


def _cpus(_env) -> int:
    return os.cpu_count() or 1


SECTIONS = {
    "state": "Local state",
    "services": "Both services (auth_svc and kv_svc)",
    "auth": "auth_svc",
    "kv": "kv_svc",
    "gateway": "Gateway (Envoy, rendered by scripts/render_envoy.py)",
    "tarantool": "Tarantool (tarantool/init.lua)",
    "ha": "High availability (docs/high-availability.md)",
    "tools": "Scripts, tools and tests",
}


def _section(section: str, *rows: tuple) -> list[Setting]:
    """One Setting per row: (name, kind, default, meaning[, {other fields}])."""
    return [Setting(*row[:4], section=section, **(row[4] if len(row) > 4 else {})) for row in rows]


# One row per setting, unwrapped, so that each reads like its line in the README.
# fmt: off
CATALOGUE: list[Setting] = [
    *_section(
        "state",
        ("TKV_DATA_DIR", "path", "var", "root of all local state (relative to the working directory)", {"lua": True}),
        ("TKV_SECRETS_DIR", "path", "$TKV_DATA_DIR/secrets", "Tarantool and the services: the service users' password files", {"lua": True}),
    ),
    *_section(
        "services",
        ("TKV_TARANTOOL_ADDR", "str", "127.0.0.1:3301", "Tarantool's address, or every node of a replica set, comma-separated: calls go to the writable one ([docs/operations.md](docs/operations.md#replication))"),
        ("TKV_TARANTOOL_PROBE_SECONDS", "float", 0.25, "with several addresses: how often each node is asked whether it takes writes"),
        ("TKV_TARANTOOL_USER", "str", ByService(auth_svc="tkv_auth", kv_svc="tkv_kv"), "the Tarantool user the service logs in as"),
        ("TKV_TARANTOOL_PASSWORD", "secret", None, "its password; else read from `TKV_TARANTOOL_PASSWORD_FILE`"),
        ("TKV_TARANTOOL_PASSWORD_FILE", "path", "$TKV_SECRETS_DIR/tarantool-$TKV_TARANTOOL_USER.password", "the file holding that password"),
        ("TKV_TARANTOOL_CALL_TIMEOUT", "float", 2.0, "seconds: every Tarantool call"),
        ("TKV_TARANTOOL_CONNECT_TIMEOUT", "float", 2.0, "seconds: connecting to Tarantool"),
        ("TKV_TARANTOOL_RECONNECT_INTERVAL", "float", 0.25, "seconds between reconnection attempts"),
        ("TKV_JWT_PUBLIC_KEYS_DIR", "path", "$TKV_DATA_DIR/keys/public", "every accepted public key, `<kid>.pem`"),
        ("TKV_JWT_KEYS_REFRESH_SECONDS", "float", 10.0, "how often keys are reloaded (rotation without restart)"),
        ("TKV_JWT_ISSUER", "str", "tkv-auth", "the tokens' `iss`"),
        ("TKV_JWT_AUDIENCE", "str", "tkv", "the tokens' `aud`"),
        ("TKV_JWT_LEEWAY_SECONDS", "int", 10, "clock skew allowed on `exp`, `iat` and `nbf` (at most 30)", {"minimum": 0}),
        ("TKV_JWT_CACHE_SIZE", "int", 10_000, "verified tokens remembered (expiry and key re-checked on every call); `0` turns the cache off", {"minimum": 0}),
        ("TKV_MAX_REQUEST_BYTES", "int", 4 * MiB, "largest request message; also the gateway's largest JSON body (413 above)"),
        ("TKV_MAX_RESPONSE_BYTES", "int", 16 * MiB, "largest response message (a larger Read is refused with `RESPONSE_TOO_LARGE`)"),
        ("TKV_SHUTDOWN_GRACE_SECONDS", "float", 5.0, "in-flight calls finish on SIGTERM within this"),
        ("TKV_HEALTH_STORAGE_GRACE_SECONDS", "float", 1.0, "health turns NOT_SERVING only once the storage has been away this long (a failover does not empty Envoy's rotation)"),
        ("TKV_METRICS_DIR", "path", "$TKV_DATA_DIR/metrics", "where worker processes publish their metric snapshots (emptied when the service starts)"),
        ("TKV_MAX_CONCURRENT_RPCS", "int", 1000, "calls in flight per process; more get RESOURCE_EXHAUSTED"),
        ("TKV_WORKERS", "int", Computed("number of CPUs", _cpus), "serving processes sharing the port (SO_REUSEPORT); a supervisor process passes signals on and restarts a worker that dies (alone: at once after a run of 10 s or more, else after 1 s, doubling to 30 s while it keeps dying early); the gateway routes to this many worker sockets"),
        ("TKV_WORKER_SOCKET_DIR", "str", None, "services and Envoy: worker *i* also listens on `<dir>/<service>-<i>.sock`, and Envoy balances calls over those sockets (the shared port balances connections only)", {"stack": "$TKV_DATA_DIR/run"}),
        ("TKV_EVENT_LOOP", "choice", "uvloop", "`uvloop` or `asyncio`", {"choices": ("uvloop", "asyncio")}),
        ("TKV_LOG_LEVEL", "str", "INFO", "services and `tkv-ha agent` (JSON lines on stderr, written in batches every 0.2 s; warnings and errors at once)"),
        ("TKV_TLS_CERT_FILE", "str", None, "optional TLS: the server certificate (with `TKV_TLS_KEY_FILE`)"),
        ("TKV_TLS_KEY_FILE", "str", None, "optional TLS: its private key"),
        ("TKV_TLS_CLIENT_CA_FILE", "str", None, "with TLS: client certificates must chain to this CA (mTLS)"),
    ),
    *_section(
        "auth",
        ("TKV_AUTH_LISTEN", "address", "127.0.0.1:50051", "auth_svc's gRPC address"),
        ("TKV_AUTH_METRICS_LISTEN", "str", "127.0.0.1:9101", "Prometheus `/metrics` (the sum over the service's worker processes); `off` serves none"),
        ("TKV_JWT_SIGNING_KEY_FILE", "path", "$TKV_DATA_DIR/keys/signing.pem", "the current signing key"),
        ("TKV_JWT_TTL_SECONDS", "int", 30 * 60, "lifetime of an issued token"),
        ("TKV_ARGON2_MEMORY_KIB", "int", 19 * 1024, "argon2id memory cost (OWASP's minimum)", {"minimum": 8}),
        ("TKV_ARGON2_TIME_COST", "int", 2, "argon2id passes"),
        ("TKV_ARGON2_PARALLELISM", "int", 1, "argon2id lanes"),
        ("TKV_ARGON2_WORKERS", "int", Computed("number of CPUs", _cpus), "hashes computed at once"),
        ("TKV_ARGON2_MAX_PENDING", "int", Computed("32 × `TKV_ARGON2_WORKERS`", lambda env: 32 * env.int("TKV_ARGON2_WORKERS")), "hashes waiting at most; more are refused (RESOURCE_EXHAUSTED)"),
        ("TKV_LOGIN_MAX_FAILURES", "int", 10, "lock a client address out of a login after this many consecutive failures from it..."),
        ("TKV_LOGIN_LOCK_SECONDS", "int", 30, "...for this long, doubling per further failure..."),
        ("TKV_LOGIN_MAX_LOCK_SECONDS", "int", 900, "...up to this"),
        ("TKV_LOGIN_SLOW_AFTER_FAILURES", "int", 100, "past this many failures of a login from every address in a window..."),
        ("TKV_LOGIN_SLOW_WINDOW_SECONDS", "int", 3600, "...of this length..."),
        ("TKV_LOGIN_SLOW_INTERVAL_SECONDS", "int", 1, "...one attempt per this interval"),
        ("TKV_TRUSTED_PROXIES", "str", None, "addresses or CIDR blocks whose `x-forwarded-for` names the client (the worker Unix sockets always do)"),
    ),
    *_section(
        "kv",
        ("TKV_KV_LISTEN", "address", "127.0.0.1:50052", "kv_svc's gRPC address"),
        ("TKV_KV_METRICS_LISTEN", "str", "127.0.0.1:9102", "Prometheus `/metrics` (the sum over the service's worker processes); `off` serves none"),
        ("TKV_KV_MAX_BATCH_KEYS", "int", 1000, "keys in one call"),
        ("TKV_KV_MAX_KEY_BYTES", "int", 1024, "bytes of one key"),
        # At most 32: each level is three protobuf messages, and protobuf's parsers stop at 100.
        ("TKV_KV_MAX_VALUE_DEPTH", "int", 32, "objects and arrays nested inside one value (at most 32); also the depth the gateway's refusal of a deeper one names", {"maximum": 32}),
        ("TKV_KV_QUOTA_PAIRS", "int", 100_000, "pairs per user, over the pairs they own in any namespace; more is RESOURCE_EXHAUSTED `QUOTA_EXCEEDED`"),
        ("TKV_KV_QUOTA_BYTES", "int", 64 * MiB, "bytes (keys + values) per user, the same way"),
        ("TKV_KV_STORAGE_HIGH_WATER_PERCENT", "percent", 90, "pair writes (v1 and v2) are refused with `storage is full` once Tarantool's data memory passes this share of `TKV_TARANTOOL_MEMORY_BYTES`; accounts, logins, logouts, reads and deletes go on"),
        ("TKV_KV_MIN_TTL_SECONDS", "int", 1, "shortest `ttl` of a v2 put"),
        ("TKV_KV_MAX_TTL_SECONDS", "int", 10 * 365 * 24 * 3600, "longest `ttl` of a v2 put", {"shown": "ten years"}),
        ("TKV_KV_DEFAULT_PAGE_SIZE", "int", 100, "ListPairs page when `page_size` is 0"),
        ("TKV_KV_MAX_PAGE_SIZE", "int", 1000, "largest ListPairs page (a larger `page_size` gets this)"),
        ("TKV_KV_MAX_WATCHES_PER_USER", "int", 16, "open watches per user, counted over every kv_svc process (Tarantool keeps the count); more is RESOURCE_EXHAUSTED `TOO_MANY_WATCHES`"),
        ("TKV_KV_WATCH_BUFFER_BYTES", "int", 4 * MiB, "messages one watch may hold for a client that reads slowly; past it the watch ends with RESOURCE_EXHAUSTED `WATCH_FELL_BEHIND`"),
        ("TKV_KV_WATCH_PROGRESS_SECONDS", "float", 10.0, "an idle watch gets a progress message (the current revision) this often"),
        ("TKV_KV_WATCH_POLL_SECONDS", "float", 5.0, "the longest one long poll of the change log waits in Tarantool"),
        ("TKV_KV_WATCH_BATCH_EVENTS", "int", 1000, "events read per poll"),
        ("TKV_KV_WATCH_MESSAGE_RATE", "float", 1500.0, "while changes keep coming, each process pauses between polls of the change log so that its watches get at most this many messages a second in all (each carrying more changes)... ([docs/watch.md](docs/watch.md))"),
        ("TKV_KV_WATCH_COALESCE_SECONDS", "float", 0.05, "...pausing at most this long; the first change after a quiet spell goes out at once"),
    ),
    *_section(
        "gateway",
        ("TKV_GATEWAY_LISTEN", "address", "127.0.0.1:8080", "HTTP/JSON API and gRPC"),
        ("TKV_ENVOY_ADMIN_LISTEN", "address", "127.0.0.1:9901", "Envoy's admin interface (keep it on loopback)"),
        ("TKV_AUTH_UPSTREAM", "address", "$TKV_AUTH_LISTEN", "where Envoy reaches auth_svc"),
        ("TKV_KV_UPSTREAM", "address", "$TKV_KV_LISTEN", "where Envoy reaches kv_svc"),
        ("TKV_GATEWAY_MAX_RESPONSE_BYTES", "int", 64 * MiB, "the largest answer the transcoder turns into JSON; over it a JSON 500 (keep it above `TKV_MAX_RESPONSE_BYTES`, so that the services refuse first with `RESPONSE_TOO_LARGE`)"),
        ("TKV_GATEWAY_MAX_CONNECTIONS", "int", 4096, "client connections at once"),
        ("TKV_GATEWAY_AUTH_RATE", "int", 5, "Login and Register per second per client address..."),
        ("TKV_GATEWAY_AUTH_BURST", "int", 20, "...after a burst of this many"),
        ("TKV_GATEWAY_HEADERS_TIMEOUT_SECONDS", "int", 10, "a client must send its request headers within this"),
        ("TKV_GATEWAY_IDLE_TIMEOUT_SECONDS", "int", 30, "a stream may stay idle at most this long"),
        ("TKV_GATEWAY_REQUEST_TIMEOUT_SECONDS", "int", 60, "a whole request may take at most this long"),
        ("TKV_GATEWAY_HEALTH_INTERVAL_SECONDS", "int", 1, "active gRPC health checks of the services, this often"),
        ("TKV_ENVOY_CONCURRENCY", "int", Computed("a quarter of the CPUs, at least 1", lambda env: max(1, _cpus(env) // 4)), "Envoy's worker threads (`--concurrency`): Envoy shares the cores with the Python workers, which need them more"),
        ("TKV_GATEWAY_TLS_CERT_FILE", "str", None, "optional HTTPS and gRPC over TLS for clients: the certificate (with `TKV_GATEWAY_TLS_KEY_FILE`)"),
        ("TKV_GATEWAY_TLS_KEY_FILE", "str", None, "its private key"),
        ("TKV_UPSTREAM_TLS_CA_FILE", "str", None, "Envoy to the services over TLS, verifying their certificates against this CA"),
        ("TKV_UPSTREAM_TLS_CERT_FILE", "str", None, "Envoy's client certificate to the services (mTLS; with `TKV_UPSTREAM_TLS_KEY_FILE`)"),
        ("TKV_UPSTREAM_TLS_KEY_FILE", "str", None, "its private key"),
    ),
    *_section(
        "tarantool",
        ("TKV_TARANTOOL_LISTEN", "address", "127.0.0.1:3301", "Tarantool's listen address; under HA also the address the agent publishes as the leader's (never `0.0.0.0`: replicas follow it)", {"lua": True}),
        ("TKV_TARANTOOL_WORK_DIR", "path", "$TKV_DATA_DIR/tarantool", "snapshots and write-ahead log", {"lua": True}),
        ("TKV_TARANTOOL_TKV_AUTH_PASSWORD", "secret", None, "tkv_auth's password; else read from `$TKV_SECRETS_DIR/tarantool-tkv_auth.password`", {"lua": True}),
        ("TKV_TARANTOOL_TKV_KV_PASSWORD", "secret", None, "tkv_kv's password; else `$TKV_SECRETS_DIR/tarantool-tkv_kv.password`", {"lua": True}),
        ("TKV_TARANTOOL_TKV_REPLICATOR_PASSWORD", "secret", None, "tkv_replicator's password; else `$TKV_SECRETS_DIR/tarantool-tkv_replicator.password`", {"lua": True}),
        ("TKV_TARANTOOL_MAX_TUPLE_BYTES", "int", 8 * MiB, "largest tuple (one pair)", {"lua": True}),
        ("TKV_TARANTOOL_MEMORY_BYTES", "int", 256 * MiB, "memtx arena (the data's memory)", {"lua": True}),
        ("TKV_PURGE_INTERVAL_SECONDS", "int", 60, "purge of expired revocations, pairs and idle login counters, this often", {"lua": True}),
        ("TKV_CHANGES_MAX_AGE_SECONDS", "int", 3600, "the change log (every put, delete and expiry, for Watch) is trimmed past this age...", {"lua": True}),
        ("TKV_CHANGES_MAX_COUNT", "int", 100_000, "...or this many changes", {"lua": True}),
        ("TKV_TARANTOOL_CONSOLE_SOCKET", "str", None, "admin console on this unix socket (off when unset; `nc -U <path>`); required by the failover agent and `scripts/backup.py create`", {"lua": True}),
        ("TKV_TARANTOOL_REPLICATION", "str", "", "peers to replicate from, `host:port,...` ([docs/operations.md](docs/operations.md))", {"lua": True, "shown": "none"}),
        ("TKV_TARANTOOL_READ_ONLY", "bool", False, "`true` on a replica", {"lua": True}),
        ("TKV_TARANTOOL_SERVE_REPLICAS", "bool", False, "`true`: replicas may connect; the replication user `tkv_replicator` exists only then, or when the instance replicates from peers", {"lua": True}),
        ("TKV_TARANTOOL_SYNC_QUORUM", "int", 0, "synchronous replication: instances (the master included) that must have a write; `0` is asynchronous", {"lua": True, "minimum": 0}),
        ("TKV_TARANTOOL_SYNC_TIMEOUT_SECONDS", "float", 5.0, "a synchronous write without its quorum is rolled back after this", {"lua": True}),
    ),
    *_section(
        "ha",
        ("TKV_HA", "bool", False, "Tarantool: a node under its failover agent (read-only until promoted)", {"lua": True}),
        ("TKV_HA_BOOTSTRAP", "bool", False, "Tarantool, with `TKV_HA`: this node creates the replica set on an empty work dir (one node only)", {"lua": True}),
        ("TKV_HA_NAME", "str", None, "agent (required): this node's name (n1, n2, ...)"),
        ("TKV_HA_AGENT_LISTEN", "address", "127.0.0.1:9711", "agent: its `/state` and `/metrics`; also the address it publishes in the leader key"),
        ("TKV_HA_PEERS", "str", None, "every node's agent, `name=host:port,...`: required by the agent (at least the two other nodes); `tkv-ha` falls back to `make run-ha`'s"),
        ("TKV_HA_TTL_SECONDS", "int", 3, "agent: the leader lease's TTL", {"minimum": 2}),
        ("TKV_HA_FENCE_MARGIN_SECONDS", "float", 1.0, "agent: fence this long before the lease can expire (at most half the TTL)"),
        ("TKV_HA_PROMOTE_TIMEOUT_SECONDS", "float", 10.0, "agent: how long settling the old master's queue may take"),
        ("TKV_HA_ETCD_PREFIX", "str", "/tkv/ha/", "agent, services, `tkv-ha`: where the leader key lives in etcd"),
        ("TKV_ETCD_ENDPOINTS", "str", "", "agent, services, `tkv-ha`: etcd's client endpoints, `host:port,...`; the services follow the replica set's leader key there", {"shown": "none"}),
    ),
    *_section(
        "tools",
        ("TKV_PYTHON", "str", None, "set by scripts/run.sh: the virtualenv's python, for supervisord"),
        ("TKV_ENVOY", "str", None, "set by scripts/run.sh: the virtualenv's envoy, for supervisord"),
        ("TKV_SERVER", "str", "127.0.0.1:8080", "the `tkv` CLI: the gateway it talks to (`--server`)"),
        ("TKV_TARANTOOL_AUTH_PASSWORD", "secret", None, "docker-compose.yml's `.env` (scripts/compose-env.sh writes it): tkv_auth's password, given to Tarantool and auth_svc"),
        ("TKV_TARANTOOL_KV_PASSWORD", "secret", None, "docker-compose.yml's `.env`: tkv_kv's password, given to Tarantool and kv_svc"),
        ("TKV_TARANTOOL_REPLICATOR_PASSWORD", "secret", None, "docker-compose.yml's `.env`: tkv_replicator's password (the `ha` profile)"),
        ("TKV_MUTANT_VERDICTS", "str", None, "`make mutants`: where scripts/mutants.py has each mutant's tests record their verdict"),
    ),
]
# fmt: on

SETTINGS: dict[str, Setting] = {setting.name: setting for setting in CATALOGUE}
