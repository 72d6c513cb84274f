"""Reading google.rpc.Status details off a failed call, for assertions."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status


def details(error: grpc.aio.AioRpcError):
    """(ErrorInfo or None, [(field, description), ...]) of a failed call; the ErrorInfo
    without its request id, which it must have."""
    status = rpc_status.from_call(error)
    info, violations = None, []
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            # Every error names its call's request id (tkv_common/request_ids.py); taken off
            # here so that tests compare what differs between errors, not between calls.
            assert info.metadata.get("request_id"), f"no request id in {info}"
            del info.metadata["request_id"]
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations = [(v.field, v.description) for v in bad.field_violations]
    return info, violations


def reason(error: grpc.aio.AioRpcError) -> str | None:
    info, _ = details(error)
    return info.reason if info else None


def detail_of(error: grpc.aio.AioRpcError, kind):
    """The first detail of message type `kind` (PreconditionFailure, QuotaFailure, ...)."""
    status = rpc_status.from_call(error)
    for detail in status.details if status else ():
        if detail.Is(kind.DESCRIPTOR):
            found = kind()
            detail.Unpack(found)
            return found
    return None


async def expect_error(call, code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    """Awaits `call`, which must fail with `code`; returns the error for more assertions."""
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    assert error.value.code() == code, error.value.details()
    return error.value
