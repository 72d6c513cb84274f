"""What a failed call raises: one small hierarchy carrying the gRPC code, the stable
`ErrorInfo` reason and the details the server attached (field violations, missing keys,
current versions, quota)."""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc
from google.rpc import error_details_pb2, status_pb2


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str


@dataclass
class TkvError(Exception):
    """A call failed. `reason` is the server's stable ErrorInfo reason (match on it, not on
    `message`); `metadata` its ErrorInfo metadata."""

    code: grpc.StatusCode
    message: str
    reason: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    violations: list[FieldViolation] = field(default_factory=list)
    # PreconditionFailure: key -> its current version (0 = absent).
    current_versions: dict[str, int] = field(default_factory=dict)
    quota_violations: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}" + (f" ({self.reason})" if self.reason else "")


class InvalidArgument(TkvError):
    """The request breaks a rule; `violations` say which field and why."""


class Unauthenticated(TkvError):
    """No token, or one the server refuses (expired, revoked, invalid)."""


class TokenExpired(Unauthenticated):
    """The client's token expired and it holds no credentials to log in again."""


class PermissionDenied(TkvError):
    """Another user's namespace or pair, or keys outside the caller's grant."""


class NotFound(TkvError):
    """Absent keys (`metadata`/message name them), an unknown grantee or grant."""


class VersionMismatch(TkvError):
    """A condition did not hold: `current_versions` has every failing key's version."""


class ResourceExhausted(TkvError):
    """A quota, storage full, a response too large, or too many watches."""


class OutOfRange(TkvError):
    """A watch from a revision the change log no longer holds: `metadata["oldest_revision"]`."""


class Unavailable(TkvError):
    """The service or its storage cannot be reached now; the client retried where safe."""


_CLASSES = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ABORTED: VersionMismatch,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.OUT_OF_RANGE: OutOfRange,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
}


def from_rpc_error(error: grpc.RpcError) -> TkvError:
    """The typed error for a failed call (sync or asyncio), its details unpacked."""
    code = error.code()
    kind = _CLASSES.get(code, TkvError)
    result = kind(code=code, message=error.details() or "")
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            _unpack(status_pb2.Status.FromString(value), result)
    return result


def _unpack(status: status_pb2.Status, error: TkvError) -> None:
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            error.reason, error.metadata = info.reason, dict(info.metadata)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            error.violations = [FieldViolation(v.field, v.description) for v in bad.field_violations]
        elif detail.Is(error_details_pb2.PreconditionFailure.DESCRIPTOR):
            failure = error_details_pb2.PreconditionFailure()
            detail.Unpack(failure)
            error.current_versions = {
                v.subject: int(v.description.split()[2])
                for v in failure.violations
                if v.description.startswith("current version ")
            }
        elif detail.Is(error_details_pb2.QuotaFailure.DESCRIPTOR):
            quota = error_details_pb2.QuotaFailure()
            detail.Unpack(quota)
            error.quota_violations = [f"{v.subject}: {v.description}" for v in quota.violations]
