"""Wires kv_svc together: the Tarantool adapter (storage.py), the v1 and v2 rules, the
servicers and their handler tables (handlers.py), and the shared gRPC server
(interceptor order lives in tkv_common.server). kv_svc holds only public keys."""

from __future__ import annotations

from tkv_common import storage_stats
from tkv_common.keys import KeySet
from tkv_common.server import GrpcService
from tkv_common.tarantool import TarantoolClient
from tkv_common.tokens import TokenVerifier

from . import messages
from .config import KvSettings
from .handlers import V1_SERVICE, V2_SERVICE, v1_handlers, v2_handlers
from .paging import PageTokens
from .rules_v1 import SharedStoreRules
from .rules_v2 import NamespacedRules
from .servicer_v1 import KeyValueServicerV1
from .servicer_v2 import KeyValueServicerV2
from .sharing import SharingRules
from .storage import TarantoolAdapter
from .watching import WatchHub


def create_service(settings: KvSettings, storage: TarantoolClient | None = None) -> GrpcService:
    """`storage` is for tests; the service normally opens its own Tarantool connection."""
    storage_stats.HIGH_WATER.set(settings.quotas.high_water_percent / 100)
    keys = KeySet(settings.tokens.keys)
    storage = storage or TarantoolClient(settings.tarantool)
    adapter = TarantoolAdapter(storage, settings.quotas, settings.server.max_response_bytes)
    servicer = KeyValueServicerV1(SharedStoreRules(adapter, settings.limits), settings.server.max_response_bytes)
    watches = WatchHub(adapter, settings.watch)
    rules_v2 = NamespacedRules(adapter, settings.limits, settings.v2, PageTokens(settings.tarantool.password), watches)
    servicer2 = KeyValueServicerV2(rules_v2, SharingRules(adapter, settings.limits))
    handlers = (v1_handlers(servicer), v2_handlers(servicer2))
    return GrpcService(
        settings=settings.server,
        # v1 first: its name is the one health checks and the gateway have always used.
        service_names=[V1_SERVICE, V2_SERVICE],
        registrars=[lambda server: server.add_generic_rpc_handlers(handlers)],
        verifier=TokenVerifier(keys, settings.tokens),
        keys=keys,
        public_methods=frozenset(),
        token_refusal=messages.NOT_AUTHORIZED,
        storage=storage,
        report_storage=True,
    )
