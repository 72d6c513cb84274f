"""tkv.kv.v2.KeyValueService: translates protobuf to the rules in rules_v2.py and sharing.py and back.

Reads answer bytes spliced from stored rows (wire.py); puts parse their requests with the
views of protos/tkv/internal/v1/write_view.proto, so values stay the encoded bytes a
client sent until rules_v2.py checks them.
"""

from __future__ import annotations

import grpc
from google.protobuf import duration_pb2, timestamp_pb2

from tkv.internal.v1 import write_view_pb2
from tkv.kv.v2 import kv_pb2
from tkv_common.errors import FieldViolation, InvalidArgument
from tkv_common.tokens import current_claims

from . import messages, wire
from .rules_v2 import DeleteItem, NamespacedRules, PutItem
from .sharing import Grant, SharingRules


def _seconds(duration: duration_pb2.Duration) -> float:
    return duration.seconds + duration.nanos / 1e9


def _timestamp(seconds_since_epoch: float) -> timestamp_pb2.Timestamp:
    seconds, nanos = wire.timestamp_parts(seconds_since_epoch)
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)


def _put_item(view) -> PutItem:
    return PutItem(
        key=view.key,
        value=view.value,
        expected_version=view.expected_version if view.HasField("expected_version") else None,
        ttl_seconds=_seconds(view.ttl) if view.HasField("ttl") else None,
    )


def _grant(grant: Grant) -> kv_pb2.Grant:
    return kv_pb2.Grant(
        namespace=grant.namespace,
        grantee=grant.grantee,
        prefix=grant.prefix,
        role=kv_pb2.Role.Value(grant.role),
        create_time=_timestamp(grant.create_time),
    )


class KeyValueServicerV2:
    """Registered with its own (de)serializers (handlers.py v2_handlers)."""

    def __init__(self, pairs: NamespacedRules, sharing: SharingRules):
        self._pairs = pairs
        self._sharing = sharing

    async def GetPair(self, request: kv_pb2.GetPairRequest, context: grpc.aio.ServicerContext) -> bytes:
        row = await self._pairs.get(current_claims.get(), request.namespace, request.key)
        return wire.pair(row)

    async def BatchGetPairs(self, request: kv_pb2.BatchGetPairsRequest, context: grpc.aio.ServicerContext) -> bytes:
        found = await self._pairs.batch_get(current_claims.get(), request.namespace, list(request.keys))
        return wire.pairs_and_keys(found.rows, found.missing_keys)

    async def PutPair(
        self, request: write_view_pb2.PutPairRequestView, context: grpc.aio.ServicerContext
    ) -> kv_pb2.PutPairResponse:
        item = _put_item(request)
        written = await self._pairs.put(current_claims.get(), request.namespace, [item], single=True)
        response = kv_pb2.PutPairResponse(revision=written.revision)
        if item.ttl_seconds is not None:
            response.expire_time.CopyFrom(_timestamp(written.time + item.ttl_seconds))
        return response

    async def BatchPutPairs(
        self, request: write_view_pb2.BatchPutPairsRequestView, context: grpc.aio.ServicerContext
    ) -> kv_pb2.BatchPutPairsResponse:
        items = [_put_item(view) for view in request.pairs]
        written = await self._pairs.put(current_claims.get(), request.namespace, items)
        return kv_pb2.BatchPutPairsResponse(revision=written.revision)

    async def DeletePair(
        self, request: kv_pb2.DeletePairRequest, context: grpc.aio.ServicerContext
    ) -> kv_pb2.DeletePairResponse:
        expected = request.expected_version if request.HasField("expected_version") else None
        deleted = await self._pairs.delete(
            current_claims.get(), request.namespace, [DeleteItem(request.key, expected)], single=True
        )
        return kv_pb2.DeletePairResponse(revision=deleted.revision)

    async def BatchDeletePairs(
        self, request: kv_pb2.BatchDeletePairsRequest, context: grpc.aio.ServicerContext
    ) -> kv_pb2.BatchDeletePairsResponse:
        if request.keys and request.pairs:
            raise InvalidArgument.from_violations([FieldViolation("keys", messages.KEYS_AND_PAIRS)])
        items = [DeleteItem(key, None) for key in request.keys] or [
            DeleteItem(pair.key, pair.expected_version if pair.HasField("expected_version") else None)
            for pair in request.pairs
        ]
        deleted = await self._pairs.delete(current_claims.get(), request.namespace, items)
        return kv_pb2.BatchDeletePairsResponse(revision=deleted.revision, missing_keys=deleted.missing_keys)

    async def ListPairs(self, request: kv_pb2.ListPairsRequest, context: grpc.aio.ServicerContext) -> bytes:
        listed = await self._pairs.list(
            current_claims.get(),
            request.namespace,
            request.prefix,
            request.page_size,
            request.page_token,
            request.keys_only,
        )
        return wire.page(listed.page.rows, listed.next_page_token, listed.page.revision)

    async def Watch(self, request: kv_pb2.WatchRequest, context: grpc.aio.ServicerContext) -> None:
        key = request.key if request.WhichOneof("target") == "key" else None
        messages_ = self._pairs.watch(
            current_claims.get(), request.namespace, request.prefix, key, request.start_revision, request.keys_only
        )
        async for message in messages_:
            try:
                await context.write(message)
            except grpc.aio.InternalError:
                # The stream is gone: the client hung up or its deadline passed (grpc says
                # so with ExecuteBatchError, a subclass, before context.cancelled() does).
                return

    async def CreateGrant(self, request: kv_pb2.CreateGrantRequest, context: grpc.aio.ServicerContext) -> kv_pb2.Grant:
        role = kv_pb2.Role.Name(request.role) if request.role in kv_pb2.Role.values() else ""
        grant = await self._sharing.create(
            current_claims.get(), request.namespace, request.grantee, role, request.prefix
        )
        return _grant(grant)

    async def ListGrants(
        self, request: kv_pb2.ListGrantsRequest, context: grpc.aio.ServicerContext
    ) -> kv_pb2.ListGrantsResponse:
        claims = current_claims.get()
        if request.namespace:
            grants = await self._sharing.given(claims, request.namespace)
        else:
            grants = await self._sharing.received(claims)
        return kv_pb2.ListGrantsResponse(grants=[_grant(grant) for grant in grants])

    async def DeleteGrant(
        self, request: kv_pb2.DeleteGrantRequest, context: grpc.aio.ServicerContext
    ) -> kv_pb2.DeleteGrantResponse:
        await self._sharing.delete(current_claims.get(), request.namespace, request.grantee, request.prefix)
        return kv_pb2.DeleteGrantResponse()
