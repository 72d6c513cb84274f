"""OpenTelemetry tracing: a span per RPC (tkv_common/interceptors.py) with a child per
Tarantool call (tkv_common/tarantool.py), continuing the W3C `traceparent` the gateway
sends.

Off unless the standard variables ask for it: OTEL_TRACES_EXPORTER=otlp, or an OTLP
endpoint (OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), and not
OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none. Spans then go by OTLP/gRPC; the
exporter and the SDK read their other OTEL_* variables themselves (headers, timeouts,
OTEL_TRACES_SAMPLER, OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES).

Off costs nothing per call: `tracer` is None, the interceptor does not wrap methods at
all, and a Tarantool call checks one global (make bench measures it).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

log = logging.getLogger(__name__)

# None: tracing is off. Read on the call path.
tracer: trace.Tracer | None = None
_provider: TracerProvider | None = None
propagator = TraceContextTextMapPropagator()


def wanted(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the OTEL_* variables ask for traces to be exported."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none":
        return False
    if exporter and exporter != "otlp":
        log.warning("only the otlp trace exporter is supported; tracing stays off", extra={"exporter": exporter})
        return False
    return bool(
        exporter == "otlp"
        or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def configure(service: str, environ: Mapping[str, str] = os.environ) -> None:
    """Turns tracing on with an OTLP/gRPC exporter if the environment asks for it."""
    if not wanted(environ):
        return
    protocol = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"))
    if protocol != "grpc":
        log.warning("only OTLP over gRPC is supported; tracing stays off", extra={"protocol": protocol})
        return
    # Imported only when wanted: the exporter pulls in grpc channels of its own.
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    # Resource.create reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; ours is the default.
    resource = Resource.create({SERVICE_NAME: service, **_resource_overrides(environ)})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    install(provider)
    log.info("tracing on", extra={"exporter": "otlp"})


def _resource_overrides(environ: Mapping[str, str]) -> dict[str, str]:
    name = environ.get("OTEL_SERVICE_NAME", "")
    return {SERVICE_NAME: name} if name else {}


def install(provider: TracerProvider) -> None:
    """Traces with `provider` (tests pass one with an in-memory exporter)."""
    global tracer, _provider
    _provider = provider
    tracer = provider.get_tracer("tkv")


def uninstall() -> None:
    global tracer, _provider
    tracer, _provider = None, None


def shutdown() -> None:
    """Exports what is still queued (a process that is stopping)."""
    if _provider is not None:
        _provider.shutdown()
