"""Server interceptors shared by both services, outermost first:

1. AccessLogInterceptor   one log line per call: method, status code, duration.
2. ErrorMappingInterceptor  TkvError -> google.rpc.Status; anything else -> INTERNAL
                            (logged with traceback, never sent); undecodable requests ->
                            INVALID_ARGUMENT instead of grpc's generic INTERNAL.
3. AuthInterceptor        every method not allow-listed needs a valid bearer token; its
                            claims are in `tokens.current_claims` for the handler.

The access log is outermost so it sees the final code of every call, including the
ones the inner interceptors reject. Only unary-unary methods are wrapped: the streaming
methods we serve are grpc's own health Watch and reflection, both public.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from grpc_status import rpc_status

from .errors import INTERNAL_MESSAGE, InvalidArgument, TkvError, Unauthenticated, extra_trailers, to_rpc_status
from .tokens import TokenVerifier, bearer_token, current_claims

log = logging.getLogger(__name__)
access_log = logging.getLogger("tkv.access")

Behaviour = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]
Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]]


def _wrap_unary(handler: grpc.RpcMethodHandler | None, wrap: Callable[[Behaviour], Behaviour]):
    if handler is None or handler.unary_unary is None:
        return handler
    return handler._replace(unary_unary=wrap(handler.unary_unary))


class AccessLogInterceptor(grpc.aio.ServerInterceptor):
    async def intercept_service(self, continuation: Continuation, details: grpc.HandlerCallDetails):
        handler = await continuation(details)
        method = details.method

        def wrap(behaviour: Behaviour) -> Behaviour:
            async def logged(request, context: grpc.aio.ServicerContext):
                started = time.perf_counter()
                try:
                    return await behaviour(request, context)
                finally:
                    code = context.code() or grpc.StatusCode.OK
                    if isinstance(code, int):  # grpc.aio reports an int once aborted
                        code = _CODES_BY_NUMBER.get(code, grpc.StatusCode.UNKNOWN)
                    access_log.log(
                        # Health checks come every second from Envoy and orchestrators.
                        logging.DEBUG if method.startswith("/grpc.health.") else logging.INFO,
                        "rpc",
                        extra={
                            "method": method,
                            "code": code.name,
                            "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                            "peer": context.peer(),
                        },
                    )

            return logged

        return _wrap_unary(handler, wrap)


_CODES_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}


class _UndecodableRequest:
    """Stands in for a request whose bytes did not parse (see ErrorMappingInterceptor)."""

    def __init__(self, error: Exception):
        self.error = error


class ErrorMappingInterceptor(grpc.aio.ServerInterceptor):
    async def intercept_service(self, continuation: Continuation, details: grpc.HandlerCallDetails):
        handler = await continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler
        method = details.method
        deserialize = handler.request_deserializer

        def tolerant_deserialize(data: bytes):
            # grpc answers a deserializer exception with a bare INTERNAL; the client
            # sent bad bytes, so it deserves INVALID_ARGUMENT saying so.
            try:
                return deserialize(data) if deserialize else data
            except Exception as exc:
                return _UndecodableRequest(exc)

        def wrap(behaviour: Behaviour) -> Behaviour:
            async def mapped(request, context: grpc.aio.ServicerContext):
                try:
                    if isinstance(request, _UndecodableRequest):
                        raise InvalidArgument(
                            f"request is not a valid protobuf message: {_decode_error_summary(request.error)}",
                            reason="MALFORMED_REQUEST",
                        )
                    return await behaviour(request, context)
                except TkvError as error:
                    status = rpc_status.to_status(to_rpc_status(error))
                    await context.abort(
                        status.code, status.details, (*status.trailing_metadata, *extra_trailers(error))
                    )
                except grpc.aio.AbortError:
                    raise
                except Exception:
                    log.exception("unhandled error", extra={"method": method})
                    await context.abort(grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE)

            return mapped

        return handler._replace(unary_unary=wrap(handler.unary_unary), request_deserializer=tolerant_deserialize)


def _decode_error_summary(error: Exception) -> str:
    text = str(error)
    # upb says "Error parsing message with type 'X'" and, for nesting, mentions recursion.
    if "DecodeOpt" in text or "recursion" in text.lower() or "too deep" in text.lower():
        return "nested too deeply (protobuf allows 100 message levels)"
    if "utf-8" in text.lower() or "utf8" in text.lower():
        return "a string field is not valid UTF-8"
    return "the bytes do not parse"


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Requires a valid bearer token on every method except the allow-listed ones."""

    def __init__(self, verifier: TokenVerifier, public_methods: frozenset[str]):
        self._verifier = verifier
        self._public = public_methods

    async def intercept_service(self, continuation: Continuation, details: grpc.HandlerCallDetails):
        handler = await continuation(details)
        if details.method in self._public or handler is None:
            return handler
        if handler.unary_unary is None:
            # Fail closed: a protected streaming method would need its own wrapper.
            raise RuntimeError(f"{details.method} is not public and not unary; AuthInterceptor cannot guard it")
        authorizations = [value for key, value in details.invocation_metadata or () if key == "authorization"]

        def wrap(behaviour: Behaviour) -> Behaviour:
            async def authenticated(request, context: grpc.aio.ServicerContext):
                if len(authorizations) > 1:
                    raise Unauthenticated("send exactly one authorization header", reason="TOKEN_INVALID")
                token = bearer_token(authorizations[0] if authorizations else None)
                reset = current_claims.set(self._verifier.verify(token))
                try:
                    return await behaviour(request, context)
                finally:
                    current_claims.reset(reset)

            return authenticated

        return _wrap_unary(handler, wrap)
