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
class KvSettings:
    server: ServerSettings
    tarantool: TarantoolSettings
    tokens: TokenSettings
    limits: Limits

    @classmethod
    def from_env(cls, environ=None) -> KvSettings:
        env = Env(environ)
        return cls(
            server=ServerSettings.from_env(env, listen_var="TKV_KV_LISTEN", default_listen="127.0.0.1:50052"),
            tarantool=TarantoolSettings.from_env(env, user="tkv_kv"),
            tokens=TokenSettings.from_env(env),
            limits=Limits(
                max_batch_keys=env.int("TKV_KV_MAX_BATCH_KEYS", 1000),
                max_key_bytes=env.int("TKV_KV_MAX_KEY_BYTES", 1024),
                max_value_depth=env.int("TKV_KV_MAX_VALUE_DEPTH", 32),
            ),
        )
