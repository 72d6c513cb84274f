"""The one error hierarchy of both services and its mapping to gRPC status.

Domain and storage code raise these; the error-mapping interceptor turns them into a
`google.rpc.Status` (with an AIP-193 `ErrorInfo` reason, and `BadRequest` field
violations for invalid arguments). Anything else that escapes a handler is a bug and
becomes INTERNAL without details.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2

# Every ErrorInfo names this domain (AIP-193: the service or product that owns reasons).
ERROR_DOMAIN = "tkv"


@dataclass(frozen=True)
class FieldViolation:
    """One invalid field of a request and why, as in google.rpc.BadRequest."""

    field: str
    description: str


class TkvError(Exception):
    """An expected failure the client is told about. Do not raise this class itself."""

    default_reason: ClassVar[str] = "UNSPECIFIED"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
        details: Sequence[Message] = (),
    ):
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.metadata = dict(metadata or {})
        # More google.rpc detail messages (PreconditionFailure, QuotaFailure, ...), sent
        # after the ErrorInfo.
        self.details = list(details)


class InvalidArgument(TkvError):
    """The request itself is wrong (fails validation, duplicate keys, bad types, limits).

    List every violated field at once so the client can fix them in one go.
    """

    default_reason = "INVALID_ARGUMENT"

    def __init__(self, message: str, violations: Iterable[FieldViolation] = (), **kwargs):
        super().__init__(message, **kwargs)
        self.violations = list(violations)

    # A request can break a rule a thousand times (one per key); the status travels in
    # trailers that clients cap at 8 KiB, as the message and again inside the details
    # (base64: 4/3 of it). So only the first violations are told: at most MAX_LISTED, and
    # no more than MAX_MESSAGE_BYTES of their texts (at least one, whatever its size).
    MAX_LISTED = 20
    MAX_MESSAGE_BYTES = 2048

    @classmethod
    def from_violations(cls, violations: list[FieldViolation], **kwargs) -> InvalidArgument:
        """One message holding every violation's text joined by `; ` (docs/api.md, "Conventions": each rule a
        request breaks, in the original's wording), cut as above with "and N more". Each
        description must therefore read on its own."""
        listed: list[FieldViolation] = []
        size = 0
        for violation in violations[: cls.MAX_LISTED]:
            size += len(violation.description.encode()) + 2
            if listed and size > cls.MAX_MESSAGE_BYTES:
                break
            listed.append(violation)
        message = "; ".join(v.description for v in listed)
        if len(violations) > len(listed):
            message += f"; and {len(violations) - len(listed)} more"
        return cls(message, listed, **kwargs)


class Unauthenticated(TkvError):
    """Credentials or token missing, wrong, expired or revoked."""

    default_reason = "UNAUTHENTICATED"


class TokenRejected(Unauthenticated):
    """The caller's access token cannot be used (missing, malformed, expired, revoked).

    The message says why; the call path puts the service's own refusal sentence in front
    of it (`refused_as`), since the original API words this differently per service.
    """

    def refused_as(self, sentence: str) -> TokenRejected:
        return TokenRejected(with_detail(sentence, self.message), reason=self.reason, metadata=self.metadata)


class AlreadyExists(TkvError):
    """The thing to create exists already (a taken login)."""

    default_reason = "ALREADY_EXISTS"


class NotFound(TkvError):
    """Something the request names does not exist (keys absent from the store)."""

    default_reason = "NOT_FOUND"


class ResourceExhausted(TkvError):
    """A rate or capacity limit was hit. Set `retry_after_seconds` when waiting helps: it
    travels as a google.rpc.RetryInfo detail and a `retry-after` trailer (HTTP Retry-After)."""

    default_reason = "RESOURCE_EXHAUSTED"

    def __init__(self, message: str, *, retry_after_seconds: int | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after_seconds = retry_after_seconds


class PermissionDenied(TkvError):
    """The caller is known but may not do this (another user's namespace or pair)."""

    default_reason = "PERMISSION_DENIED"


class Aborted(TkvError):
    """A condition of the request no longer holds (an expected version); re-read and retry.
    Attach a google.rpc.PreconditionFailure naming what failed."""

    default_reason = "ABORTED"


class OutOfRange(TkvError):
    """The request names a position past what is kept (a watch from a revision the change
    log no longer holds)."""

    default_reason = "OUT_OF_RANGE"


class Unavailable(TkvError):
    """Storage cannot be reached right now; the same request may succeed later."""

    default_reason = "STORAGE_UNAVAILABLE"


# The one mapping from error type to gRPC status code.
GRPC_CODES: dict[type[TkvError], grpc.StatusCode] = {
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    NotFound: grpc.StatusCode.NOT_FOUND,
    PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    Aborted: grpc.StatusCode.ABORTED,
    OutOfRange: grpc.StatusCode.OUT_OF_RANGE,
    ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
}

INTERNAL_MESSAGE = "internal error"


def grpc_code(error: TkvError) -> grpc.StatusCode:
    # The nearest listed class: a subclass (TokenRejected) has its parent's code.
    return next(GRPC_CODES[kind] for kind in type(error).__mro__ if kind in GRPC_CODES)


def with_detail(sentence: str, detail: str) -> str:
    """A user-facing sentence (often the original API's, kept verbatim) followed by what
    this product adds to it: `You have not been authorized! (access token has expired)`."""
    return f"{sentence} ({detail})"


def _error_info(reason: str, metadata: Mapping[str, str], request_id: str | None) -> error_details_pb2.ErrorInfo:
    # The call's request id travels in every error, so a user's report leads to its log lines.
    metadata = {**metadata, "request_id": request_id} if request_id else metadata
    return error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN, metadata=metadata)


def internal_status(request_id: str | None = None) -> status_pb2.Status:
    """What an unexpected failure tells the client: nothing but that it happened, and the
    request id under which its traceback was logged."""
    return status_pb2.Status(
        code=code_pb2.INTERNAL, message=INTERNAL_MESSAGE, details=[_pack(_error_info("INTERNAL", {}, request_id))]
    )


def to_rpc_status(error: TkvError, request_id: str | None = None) -> status_pb2.Status:
    """google.rpc.Status for a domain error: code, message, ErrorInfo, BadRequest."""
    code = grpc_code(error)
    info = _error_info(error.reason, error.metadata, request_id)
    details = [_pack(info)]
    if isinstance(error, InvalidArgument) and error.violations:
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                for v in error.violations
            ]
        )
        details.append(_pack(bad_request))
    if isinstance(error, ResourceExhausted) and error.retry_after_seconds is not None:
        retry = error_details_pb2.RetryInfo()
        retry.retry_delay.FromSeconds(error.retry_after_seconds)
        details.append(_pack(retry))
    details += [_pack(detail) for detail in error.details]
    return status_pb2.Status(code=_rpc_code(code), message=error.message, details=details)


def extra_trailers(error: TkvError) -> tuple[tuple[str, str], ...]:
    """Plain trailers some clients read more easily than status details."""
    if isinstance(error, ResourceExhausted) and error.retry_after_seconds is not None:
        return (("retry-after", str(error.retry_after_seconds)),)
    return ()


def _rpc_code(code: grpc.StatusCode) -> int:
    # grpc.StatusCode values are (int, name) pairs; google.rpc.Code uses the same numbers.
    number = code.value[0]
    assert code_pb2.Code.Name(number) == code.name
    return number


def _pack(message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed
