"""kv_svc's two handler tables, v1 and v2: which servicer method answers each RPC, and how
its messages are (de)serialized. Like the generated add_KeyValueServiceServicer_to_server,
except where a method parses a view or answers bytes it encoded itself (kv_svc/wire.py,
kv_svc/values.py): a new RPC is registered here."""

from __future__ import annotations

import grpc

from tkv.internal.v1 import write_view_pb2
from tkv.kv.v1 import kv_pb2 as kv_v1_pb2
from tkv.kv.v2 import kv_pb2 as kv_v2_pb2

from .servicer_v1 import KeyValueServicerV1
from .servicer_v2 import KeyValueServicerV2

V1_SERVICE = kv_v1_pb2.DESCRIPTOR.services_by_name["KeyValueService"].full_name
V2_SERVICE = kv_v2_pb2.DESCRIPTOR.services_by_name["KeyValueService"].full_name


def v1_handlers(servicer: KeyValueServicerV1) -> grpc.GenericRpcHandler:
    """Like the generated add_KeyValueServiceServicer_to_server, except that Write parses
    its bytes as WriteRequestView: protobuf maps drop entry order and repeated keys, both
    of which the API reports (see protos/tkv/internal/v1/write_view.proto); and Read
    answers bytes it encoded itself (kv_svc/values.py)."""
    return grpc.method_handlers_generic_handler(
        V1_SERVICE,
        {
            "Read": grpc.unary_unary_rpc_method_handler(
                servicer.Read,
                request_deserializer=kv_v1_pb2.ReadRequest.FromString,
                response_serializer=None,
            ),
            "Write": grpc.unary_unary_rpc_method_handler(
                servicer.Write,
                request_deserializer=write_view_pb2.WriteRequestView.FromString,
                response_serializer=kv_v1_pb2.WriteResponse.SerializeToString,
            ),
        },
    )


def v2_handlers(servicer: KeyValueServicerV2) -> grpc.GenericRpcHandler:
    """Like the generated add_KeyValueServiceServicer_to_server, except that reads answer
    bytes they encoded themselves and puts parse their requests with views."""
    unary = grpc.unary_unary_rpc_method_handler
    return grpc.method_handlers_generic_handler(
        V2_SERVICE,
        {
            "GetPair": unary(servicer.GetPair, kv_v2_pb2.GetPairRequest.FromString, None),
            "BatchGetPairs": unary(servicer.BatchGetPairs, kv_v2_pb2.BatchGetPairsRequest.FromString, None),
            "PutPair": unary(
                servicer.PutPair,
                write_view_pb2.PutPairRequestView.FromString,
                kv_v2_pb2.PutPairResponse.SerializeToString,
            ),
            "BatchPutPairs": unary(
                servicer.BatchPutPairs,
                write_view_pb2.BatchPutPairsRequestView.FromString,
                kv_v2_pb2.BatchPutPairsResponse.SerializeToString,
            ),
            "DeletePair": unary(
                servicer.DeletePair,
                kv_v2_pb2.DeletePairRequest.FromString,
                kv_v2_pb2.DeletePairResponse.SerializeToString,
            ),
            "BatchDeletePairs": unary(
                servicer.BatchDeletePairs,
                kv_v2_pb2.BatchDeletePairsRequest.FromString,
                kv_v2_pb2.BatchDeletePairsResponse.SerializeToString,
            ),
            "ListPairs": unary(servicer.ListPairs, kv_v2_pb2.ListPairsRequest.FromString, None),
            # Messages are encoded by kv_svc/watching.py, once per change for every watcher.
            "Watch": grpc.unary_stream_rpc_method_handler(servicer.Watch, kv_v2_pb2.WatchRequest.FromString, None),
            "CreateGrant": unary(
                servicer.CreateGrant, kv_v2_pb2.CreateGrantRequest.FromString, kv_v2_pb2.Grant.SerializeToString
            ),
            "ListGrants": unary(
                servicer.ListGrants,
                kv_v2_pb2.ListGrantsRequest.FromString,
                kv_v2_pb2.ListGrantsResponse.SerializeToString,
            ),
            "DeleteGrant": unary(
                servicer.DeleteGrant,
                kv_v2_pb2.DeleteGrantRequest.FromString,
                kv_v2_pb2.DeleteGrantResponse.SerializeToString,
            ),
        },
    )
