"""tkv.kv.v1.KeyValueService: translates protobuf to the batch rules in rules_v1.py and back."""

from __future__ import annotations

import grpc

from tkv.internal.v1 import write_view_pb2
from tkv.kv.v1 import kv_pb2
from tkv_common.tokens import current_claims

from . import values
from .rules_v1 import RawPair, SharedStoreRules, too_large, write_status


class KeyValueServicerV1:
    """Registered with its own (de)serializers (handlers.py v1_handlers): Write takes WriteRequestView,
    Read answers bytes."""

    def __init__(self, rules: SharedStoreRules, max_response_bytes: int):
        self._rules = rules
        self._max_response_bytes = max_response_bytes

    async def Read(self, request: kv_pb2.ReadRequest, context: grpc.aio.ServicerContext) -> bytes:
        """Answers an encoded ReadResponse, spliced from the stored values (values.py)."""
        keys = list(request.keys)
        answer = values.read_response(keys, await self._rules.read(current_claims.get(), keys))
        if len(answer) > self._max_response_bytes:
            # Storage refuses answers whose stored size passes the limit before sending
            # them; the encoded answer differs from that by a few bytes per pair, and grpc
            # would refuse to send it with a generic message and a traceback in the log.
            raise too_large(len(answer), self._max_response_bytes)
        return answer

    async def Write(
        self, request: write_view_pb2.WriteRequestView, context: grpc.aio.ServicerContext
    ) -> kv_pb2.WriteResponse:
        pairs = [RawPair(field.key, field.value) for field in request.data.fields]
        skipped = await self._rules.write(current_claims.get(), pairs)
        return kv_pb2.WriteResponse(status=write_status(skipped), skipped_keys=skipped)
