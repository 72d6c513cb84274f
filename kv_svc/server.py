"""Wires kv_svc together: storage, batch rules, servicer, and the shared gRPC server
(interceptor order lives in tkv_common.server). kv_svc holds only public keys."""

from __future__ import annotations

import grpc

from tkv.internal.v1 import write_view_pb2
from tkv.kv.v1 import kv_pb2
from tkv_common import storage_stats
from tkv_common.keys import KeySet
from tkv_common.server import GrpcService
from tkv_common.tarantool import TarantoolClient
from tkv_common.tokens import TokenVerifier

from . import messages, servicer_v2
from .config import KvSettings
from .namespaced import NamespacedStore
from .paging import PageTokens
from .pairs import KeyValueStore
from .servicer import KeyValueServicer
from .servicer_v2 import KeyValueServicerV2
from .sharing import Sharing
from .storage import KvStorage
from .watching import WatchHub

SERVICE_NAME = kv_pb2.DESCRIPTOR.services_by_name["KeyValueService"].full_name


def method_handlers(servicer: KeyValueServicer) -> grpc.GenericRpcHandler:
    """Like the generated add_KeyValueServiceServicer_to_server, except that Write parses
    its bytes as WriteRequestView: protobuf maps drop entry order and repeated keys, both
    of which the API reports (see protos/tkv/internal/v1/write_view.proto); and Read
    answers bytes it encoded itself (kv_svc/values.py)."""
    return grpc.method_handlers_generic_handler(
        SERVICE_NAME,
        {
            "Read": grpc.unary_unary_rpc_method_handler(
                servicer.Read,
                request_deserializer=kv_pb2.ReadRequest.FromString,
                response_serializer=None,
            ),
            "Write": grpc.unary_unary_rpc_method_handler(
                servicer.Write,
                request_deserializer=write_view_pb2.WriteRequestView.FromString,
                response_serializer=kv_pb2.WriteResponse.SerializeToString,
            ),
        },
    )


def create_service(settings: KvSettings, storage: TarantoolClient | None = None) -> GrpcService:
    """`storage` is for tests; the service normally opens its own Tarantool connection."""
    storage_stats.HIGH_WATER.set(settings.quotas.high_water_percent / 100)
    keys = KeySet(settings.tokens.keys)
    storage = storage or TarantoolClient(settings.tarantool)
    pairs = KvStorage(storage, settings.quotas, settings.server.max_response_bytes)
    servicer = KeyValueServicer(KeyValueStore(pairs, settings.limits), settings.server.max_response_bytes)
    watches = WatchHub(pairs, settings.watch)
    store_v2 = NamespacedStore(pairs, settings.limits, settings.v2, PageTokens(settings.tarantool.password), watches)
    servicer2 = KeyValueServicerV2(store_v2, Sharing(pairs, settings.limits))
    handlers = (method_handlers(servicer), servicer_v2.method_handlers(servicer2))
    return GrpcService(
        settings=settings.server,
        # v1 first: its name is the one health checks and the gateway have always used.
        service_names=[SERVICE_NAME, servicer_v2.SERVICE_NAME],
        registrars=[lambda server: server.add_generic_rpc_handlers(handlers)],
        verifier=TokenVerifier(keys, settings.tokens),
        keys=keys,
        public_methods=frozenset(),
        token_refusal=messages.NOT_AUTHORIZED,
        storage=storage,
        report_storage=True,
    )
