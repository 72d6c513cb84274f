"""The per-call path shared by both services, outermost first:

1. access log     one line per call: method, status code, duration, peer.
2. error mapping  TkvError -> google.rpc.Status; anything else -> INTERNAL (logged with
                  traceback, never sent); undecodable requests -> INVALID_ARGUMENT instead
                  of grpc's generic INTERNAL.
3. authentication every method not allow-listed needs a valid bearer token; its claims
                  are in `tokens.current_claims` for the handler. A token refused here
                  or by storage (revoked) is told in the service's own refusal sentence.

The access log is outermost so it sees the final code of every call, including the ones
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
from typing import Any

import grpc
from grpc_status import rpc_status

from . import logs
from .errors import INTERNAL_MESSAGE, InvalidArgument, TkvError, TokenRejected, extra_trailers, to_rpc_status
from .tokens import TokenVerifier, bearer_token, current_claims

log = logging.getLogger(__name__)
access_log = logging.getLogger("tkv.access")

Behaviour = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]
Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]]

_CODES_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}


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
        return handler._replace(
            **{kind: logged(method, mapped(method, behaviour))},
            request_deserializer=tolerant(handler.request_deserializer),
        )


def logged(method: str, behaviour: Behaviour) -> Behaviour:
    # Health checks come every second from Envoy and orchestrators.
    level = logging.DEBUG if method.startswith("/grpc.health.") else logging.INFO

    async def call(request, context: grpc.aio.ServicerContext):
        started = time.perf_counter()
        try:
            return await behaviour(request, context)
        finally:
            if access_log.isEnabledFor(level):
                code = context.code() or grpc.StatusCode.OK
                if isinstance(code, int):  # grpc.aio reports an int once aborted
                    code = _CODES_BY_NUMBER.get(code, grpc.StatusCode.UNKNOWN)
                logs.fast_log(
                    access_log,
                    level,
                    "rpc",
                    method=method,
                    code=code.name,
                    duration_ms=round((time.perf_counter() - started) * 1000, 3),
                    peer=context.peer(),
                )

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
    async def call(request, context: grpc.aio.ServicerContext):
        try:
            if isinstance(request, _UndecodableRequest):
                raise InvalidArgument(
                    f"request is not a valid protobuf message: {_decode_error_summary(request.error)}",
                    reason="MALFORMED_REQUEST",
                )
            return await behaviour(request, context)
        except TkvError as error:
            status = rpc_status.to_status(to_rpc_status(error))
            await context.abort(status.code, status.details, (*status.trailing_metadata, *extra_trailers(error)))
        except grpc.aio.AbortError:
            raise
        except Exception:
            log.exception("unhandled error", extra={"method": method})
            await context.abort(grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE)

    return call


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
            authorizations = [value for key, value in context.invocation_metadata() or () if key == "authorization"]
            if len(authorizations) > 1:
                raise TokenRejected("send exactly one authorization header", reason="TOKEN_INVALID")
            token = bearer_token(authorizations[0] if authorizations else None)
            reset = current_claims.set(verifier.verify(token))
            try:
                return await behaviour(request, context)
            finally:
                current_claims.reset(reset)
        except TokenRejected as error:
            raise error.refused_as(refusal) from None

    return call
