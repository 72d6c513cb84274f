"""The per-call path shared by both services, outermost first:

1. observation    the call's request id (tkv_common/request_ids.py), one access-log line
                  (method, status code, duration, peer), and the gRPC server metrics
                  (grpc_server_started_total, grpc_server_handled_total,
                  grpc_server_handling_seconds, as go-grpc-prometheus names them).
   tracing        a span per call, continuing the caller's traceparent: only when tracing
                  is on (tkv_common/tracing.py); otherwise not in the chain at all.
2. error mapping  TkvError -> google.rpc.Status; anything else -> INTERNAL (logged with
                  traceback, never sent); undecodable requests -> INVALID_ARGUMENT instead
                  of grpc's generic INTERNAL.
3. authentication every method not allow-listed needs a valid bearer token; its claims
                  are in `tokens.current_claims` for the handler. A token refused here
                  or by storage (revoked) is told in the service's own refusal sentence.

Observation is outermost so it sees the final code of every call, including the ones
the inner layers reject. One grpc interceptor applies all three, and composes them once
per method, not once per call: three pass-through grpc.aio interceptors building closures
on every call cost a trivial server ~14 % of its calls per second (7,112 -> 6,202;
docs/benchmarks/README.md). Unary-unary methods and server-streaming ones whose handler
writes its messages with `context.write` (kv v2 Watch) are wrapped alike; the other
streaming methods we serve are grpc's own health Watch and reflection, both public.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

import grpc
from google.protobuf import descriptor_pool
from grpc_status import rpc_status
from opentelemetry import trace

from . import logs, metrics, request_ids, tracing
from .errors import InvalidArgument, TkvError, TokenRejected, extra_trailers, internal_status, to_rpc_status
from .tokens import REFUSALS, TokenVerifier, bearer_token, current_claims

log = logging.getLogger(__name__)
access_log = logging.getLogger("tkv.access")

RPC_LABELS = ("grpc_service", "grpc_method", "grpc_type")
STARTED = metrics.Counter(metrics.REGISTRY, "grpc_server_started_total", "RPCs started on the server.", RPC_LABELS)
HANDLED = metrics.Counter(
    metrics.REGISTRY,
    "grpc_server_handled_total",
    "RPCs completed on the server, by status code.",
    (*RPC_LABELS, "grpc_code"),
)
HANDLING = metrics.Histogram(
    metrics.REGISTRY,
    "grpc_server_handling_seconds",
    "Time from the start of an RPC to its status (a Watch: its whole life).",
    RPC_LABELS,
)
ERRORS = metrics.Counter(
    metrics.REGISTRY,
    "tkv_rpc_errors_total",
    "RPCs refused with a domain error, by its ErrorInfo reason (QUOTA_EXCEEDED, STORAGE_FULL, "
    "LOGIN_THROTTLED, TOKEN_REVOKED, ...); INTERNAL for unexpected failures.",
    ("grpc_service", "grpc_method", "reason"),
)

Behaviour = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]
Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]]

_CODES_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}
# grpc_code label values as Go's codes.Code.String() spells them (NotFound, OK, Canceled):
# the dashboards and alerts people already have query these.
_GO_NAMES = {
    code: {"OK": "OK", "CANCELLED": "Canceled"}.get(code.name, code.name.title().replace("_", ""))
    for code in grpc.StatusCode
}


class CallPathInterceptor(grpc.aio.ServerInterceptor):
    """Wraps every unary method in access log -> error mapping -> authentication.

    `token_refusal` is the sentence a refused token is answered with (the original API
    says it differently per service); the reason it was refused follows it.
    """

    def __init__(self, verifier: TokenVerifier, public_methods: frozenset[str], token_refusal: str):
        self._verifier = verifier
        self._public = public_methods
        self._token_refusal = token_refusal
        # method -> (handler as registered, handler wrapped); bounded by the methods served.
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(self, continuation: Continuation, details: grpc.HandlerCallDetails):
        handler = await continuation(details)
        if handler is None:
            return None  # grpc answers UNIMPLEMENTED
        cached = self._wrapped.get(details.method)
        if cached is None or cached[0] is not handler:
            cached = (handler, self._wrap(details.method, handler))
            self._wrapped[details.method] = cached
        return cached[1]

    def _wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        public = method in self._public
        kind = "unary_unary" if handler.unary_unary is not None else "unary_stream"
        behaviour = getattr(handler, kind)
        if behaviour is None or (kind == "unary_stream" and inspect.isasyncgenfunction(behaviour)):
            if not public:
                # Fail closed: the wrappers below await one coroutine per call; any other
                # shape of protected method would slip past them.
                raise RuntimeError(f"{method} is not public and not wrappable; the call path cannot guard it")
            return handler
        if not public:
            behaviour = authenticated(self._verifier, self._token_refusal, behaviour)
        behaviour = mapped(method, behaviour)
        if tracing.tracer is not None:
            behaviour = traced(tracing.tracer, method, behaviour)
        return handler._replace(
            **{kind: observed(method, "unary" if kind == "unary_unary" else "server_stream", behaviour)},
            request_deserializer=tolerant(handler.request_deserializer),
        )


def initialize_metrics(service_names: list[str]) -> None:
    """Creates every method's gRPC series at zero before any call, as go-grpc-prometheus'
    InitializeMetrics does: a counter series that first appears with a value N (the calls
    of a scrape interval) shows no increase to rate() and increase(), so the first errors
    of a kind would never reach the error-ratio alert."""
    pool = descriptor_pool.Default()
    for service_name in service_names:
        try:
            service = pool.FindServiceByName(service_name)
        except KeyError:
            continue  # not described by a generated module in this process
        for method in service.methods:
            grpc_type = "server_stream" if method.server_streaming else "unary"
            labels = (service.full_name, method.name, grpc_type)
            STARTED.labels(*labels)
            HANDLING.labels(*labels)
            for code in grpc.StatusCode:
                HANDLED.labels(*labels, _GO_NAMES[code])


def _service_and_name(method: str) -> tuple[str, str]:
    """`/tkv.kv.v1.KeyValueService/Read` -> (`tkv.kv.v1.KeyValueService`, `Read`)."""
    service, _, name = method.lstrip("/").rpartition("/")
    return service, name


def _final_code(context: grpc.aio.ServicerContext) -> grpc.StatusCode:
    code = context.code() or grpc.StatusCode.OK
    if isinstance(code, int):  # grpc.aio reports an int once aborted
        code = _CODES_BY_NUMBER.get(code, grpc.StatusCode.UNKNOWN)
    return code


def observed(method: str, grpc_type: str, behaviour: Behaviour) -> Behaviour:
    """Request id, access log and gRPC server metrics of one method."""
    # Health checks come every second from Envoy and orchestrators.
    level = logging.DEBUG if method.startswith("/grpc.health.") else logging.INFO
    service, name = _service_and_name(method)
    labels = (service, name, grpc_type)
    started_count, handling = STARTED.labels(*labels), HANDLING.labels(*labels)
    handled = {code: HANDLED.labels(*labels, _GO_NAMES[code]) for code in grpc.StatusCode}

    async def call(request, context: grpc.aio.ServicerContext):
        started = time.perf_counter()
        started_count.inc()
        request_id, authorizations = _read_metadata(context.invocation_metadata())
        token = request_ids.current.set(request_id)
        given = _AUTHORIZATIONS.set(authorizations)
        try:
            return await behaviour(request, context)
        finally:
            code = _final_code(context)
            duration = time.perf_counter() - started
            handled[code].inc()
            handling.observe(duration)
            if access_log.isEnabledFor(level):
                logs.fast_log(
                    access_log,
                    level,
                    "rpc",
                    method=method,
                    code=code.name,
                    duration_ms=round(duration * 1000, 3),
                    peer=context.peer(),
                )
            _AUTHORIZATIONS.reset(given)
            request_ids.current.reset(token)

    return call


# The call's authorization values, read by `observed` for `authenticated`: grpc builds the
# metadata's tuples anew on every invocation_metadata() (2.6 µs with a token), so the call
# path reads them once.
_AUTHORIZATIONS: ContextVar[list[str] | None] = ContextVar("authorizations", default=None)


def _read_metadata(metadata) -> tuple[str, list[str]]:
    """The call's request id and its authorization values, in one pass."""
    caller_id, authorizations = None, []
    for key, value in metadata or ():
        if key == "authorization":
            authorizations.append(value)
        elif key == request_ids.HEADER and caller_id is None:
            caller_id = value
    return request_ids.accepted_or_new(caller_id), authorizations


def traced(tracer: trace.Tracer, method: str, behaviour: Behaviour) -> Behaviour:
    """A server span per call, the child of the caller's `traceparent` if it sent one."""
    service, name = _service_and_name(method)
    attributes = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}

    async def call(request, context: grpc.aio.ServicerContext):
        carrier = {key: value for key, value in context.invocation_metadata() or () if isinstance(value, str)}
        with tracer.start_as_current_span(
            method.lstrip("/"),
            context=tracing.propagator.extract(carrier),
            kind=trace.SpanKind.SERVER,
            attributes={**attributes, "tkv.request_id": request_ids.current.get() or ""},
            # An abort is how a handler answers an error; the code says what happened.
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                return await behaviour(request, context)
            finally:
                code = _final_code(context)
                span.set_attribute("rpc.grpc.status_code", code.value[0])
                if code is not grpc.StatusCode.OK:
                    span.set_status(trace.Status(trace.StatusCode.ERROR, code.name))

    return call


class _UndecodableRequest:
    """Stands in for a request whose bytes did not parse (see `tolerant`)."""

    def __init__(self, error: Exception):
        self.error = error


def tolerant(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any]:
    def call(data: bytes):
        # grpc answers a deserializer exception with a bare INTERNAL; the client sent bad
        # bytes, so it deserves INVALID_ARGUMENT saying so (raised by `mapped`).
        try:
            return deserialize(data) if deserialize else data
        except Exception as exc:
            return _UndecodableRequest(exc)

    return call


def mapped(method: str, behaviour: Behaviour) -> Behaviour:
    service, name = _service_and_name(method)

    async def call(request, context: grpc.aio.ServicerContext):
        try:
            if isinstance(request, _UndecodableRequest):
                raise InvalidArgument(
                    f"request is not a valid protobuf message: {_decode_error_summary(request.error)}",
                    reason="MALFORMED_REQUEST",
                )
            return await behaviour(request, context)
        except TkvError as error:
            ERRORS.labels(service, name, error.reason).inc()
            request_id = request_ids.current.get()
            status = rpc_status.to_status(to_rpc_status(error, request_id))
            await context.abort(
                status.code,
                status.details,
                (*status.trailing_metadata, *extra_trailers(error), *_id_trailer(request_id)),
            )
        except grpc.aio.AbortError:
            raise
        except Exception:
            log.exception("unhandled error", extra={"method": method})
            ERRORS.labels(service, name, "INTERNAL").inc()
            request_id = request_ids.current.get()
            status = rpc_status.to_status(internal_status(request_id))
            await context.abort(status.code, status.details, (*status.trailing_metadata, *_id_trailer(request_id)))

    return call


def _id_trailer(request_id: str | None) -> tuple[tuple[str, str], ...]:
    # A direct caller learns its call's id from an error (request_ids.py says why not on success).
    return ((request_ids.HEADER, request_id),) if request_id else ()


def _decode_error_summary(error: Exception) -> str:
    text = str(error)
    # upb says "Error parsing message with type 'X'" and, for nesting, mentions recursion.
    if "DecodeOpt" in text or "recursion" in text.lower() or "too deep" in text.lower():
        return "nested too deeply (protobuf allows 100 message levels)"
    if "utf-8" in text.lower() or "utf8" in text.lower():
        return "a string field is not valid UTF-8"
    return "the bytes do not parse"


def authenticated(verifier: TokenVerifier, refusal: str, behaviour: Behaviour) -> Behaviour:
    """Requires exactly one valid bearer token; its claims are current for the handler.
    A TokenRejected from the check or from the handler (storage found the token revoked)
    is told as `refusal (why)`."""

    async def call(request, context: grpc.aio.ServicerContext):
        try:
            # Read by `observed`, which wraps every method (_wrap): unset counts as none sent.
            authorizations = _AUTHORIZATIONS.get() or ()
            if len(authorizations) > 1:
                raise TokenRejected("send exactly one authorization header", reason="TOKEN_INVALID")
            token = bearer_token(authorizations[0] if authorizations else None)
            reset = current_claims.set(verifier.verify(token))
            try:
                return await behaviour(request, context)
            finally:
                current_claims.reset(reset)
        except TokenRejected as error:
            REFUSALS.labels(error.reason).inc()
            raise error.refused_as(refusal) from None

    return call
