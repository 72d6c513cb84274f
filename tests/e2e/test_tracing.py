"""One HTTP request through the real Envoy gives one trace: the gateway's span, the
service's span under it, and the Tarantool call under that, all carrying the request id.

kv_svc and auth_svc run in this process with the OpenTelemetry SDK's in-memory exporter;
Envoy (tracing rendered from OTEL_EXPORTER_OTLP_ENDPOINT, as `make run` would) exports its
spans by OTLP/gRPC to a collector this test serves. A second test runs the services as
real processes exporting by OTLP themselves, as an operator would."""

from __future__ import annotations

import asyncio
import secrets
import uuid

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.e2e.http_client import call
from tests.inprocess import start_services, stop_services
from tests.stack import NeverHappened, Stack, auth_svc, envoy, kv_svc, tarantool
from tkv_common import tracing

pytestmark = pytest.mark.slow

PASSWORD = "Secr3t!pass"
READ_SPAN = "tkv.kv.v1.KeyValueService/Read"


class Collector(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP/gRPC trace receiver: keeps (service.name, span) of every export."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, object]] = []

    async def Export(self, request, context):
        for resource_spans in request.resource_spans:
            names = [a.value.string_value for a in resource_spans.resource.attributes if a.key == "service.name"]
            for scope_spans in resource_spans.scope_spans:
                self.spans += [(names[0] if names else "", span) for span in scope_spans.spans]
        return trace_service_pb2.ExportTraceServiceResponse()


async def serve_collector() -> tuple[grpc.aio.Server, Collector, int]:
    collector = Collector()
    server = grpc.aio.server()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(collector, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, collector, port


async def eventually(check, what: str, timeout: float = 20.0):
    # Envoy exports its spans every 5 s (or every 5 spans).
    for _ in range(int(timeout / 0.1)):
        result = check()
        if result:
            return result
        await asyncio.sleep(0.1)
    raise NeverHappened(what)


def envoy_span(collector: Collector, trace_id: bytes, span_id: bytes):
    return next(
        (s for name, s in collector.spans if name == "tkv_gateway" and s.trace_id == trace_id and s.span_id == span_id),
        None,
    )


def server_span_of(exporter: InMemorySpanExporter, request_id: str):
    """The service's span of the request, once it has ended (the client may have its answer
    a moment before)."""
    spans = [
        s for s in exporter.get_finished_spans() if s.name == READ_SPAN and s.attributes["tkv.request_id"] == request_id
    ]
    assert len(spans) <= 1, spans
    return spans[0] if spans else None


def attribute(span, key: str) -> str | None:
    return next((a.value.string_value for a in span.attributes if a.key == key), None)


def tree(spans: list[tuple[str, object]]) -> list[str]:
    """The spans of one trace as indented lines: `service: name (duration ms)`."""
    children: dict[bytes, list] = {}
    for name, span in spans:
        children.setdefault(span.parent_span_id, []).append((name, span))
    known = {span.span_id for _, span in spans}
    roots = [(name, span) for name, span in spans if span.parent_span_id not in known]
    lines: list[str] = []

    def walk(entries, depth):
        for name, span in sorted(entries, key=lambda entry: entry[1].start_time_unix_nano):
            took = (span.end_time_unix_nano - span.start_time_unix_nano) / 1e6
            lines.append(f"{'  ' * depth}{name}: {span.name} ({took:.2f} ms) trace {span.trace_id.hex()[:8]}…")
            walk(children.get(span.span_id, []), depth + 1)

    walk(roots, 0)
    return lines


async def http(stack: Stack, method: str, path: str, body=None, **kwargs):
    # Blocking I/O off the loop: the services answering it run on this loop.
    return await asyncio.to_thread(call, f"127.0.0.1:{stack.gateway_port}", method, path, body, **kwargs)


async def login(stack: Stack) -> str:
    name = f"tr{uuid.uuid4().hex[:10]}"
    account = {"login": name, "password": PASSWORD, "name": "Tanya", "surname": "Orlova"}
    assert (await http(stack, "POST", "/api/register/", account)).status == 201
    return (await http(stack, "POST", "/api/login/", {"login": name, "password": PASSWORD})).body["token"]


async def test_one_http_request_is_one_trace_from_the_gateway_to_tarantool(tmp_path):
    server, collector, collector_port = await serve_collector()
    stack = Stack(
        tmp_path,
        extra_env={
            # Envoy routes to the services' ports (they run here, without worker sockets).
            "TKV_WORKER_SOCKET_DIR": "",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector_port}",
        },
    )
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    database = await asyncio.to_thread(tarantool(stack).start)
    harness = gateway = None
    try:
        harness = await start_services(
            stack, TKV_AUTH_LISTEN=f"127.0.0.1:{stack.auth_port}", TKV_KV_LISTEN=f"127.0.0.1:{stack.kv_port}"
        )
        gateway = await asyncio.to_thread(envoy(stack).start)
        token = await login(stack)

        reply = await http(stack, "POST", "/api/read/", {"keys": ["absent"]}, token=token)
        assert reply.status == 400, reply.raw
        request_id = reply.headers["x-request-id"]
        server_span = await eventually(lambda: server_span_of(exporter, request_id), "the service's span ended")
        spans = exporter.get_finished_spans()
        trace_id = server_span.context.trace_id
        assert server_span.parent is not None and server_span.parent.is_remote  # Envoy's span
        children = [s for s in spans if s.parent is not None and s.parent.span_id == server_span.context.span_id]
        assert [s.name for s in children] == ["tarantool tkv.kv_read"]
        assert children[0].context.trace_id == trace_id
        assert children[0].attributes["db.system"] == "tarantool"
        assert server_span.attributes["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]
        # The gateway's span is the parent, in the same trace, named by the same request id;
        # with no traceparent from the client, Envoy started the trace.
        gateway_span = await eventually(
            lambda: envoy_span(collector, trace_id.to_bytes(16, "big"), server_span.parent.span_id.to_bytes(8, "big")),
            "Envoy's span exported",
        )
        assert gateway_span.parent_span_id == b""
        assert attribute(gateway_span, "guid:x-request-id") == request_id
        assert {s.context.trace_id for s in spans if s.attributes.get("tkv.request_id") == request_id} == {trace_id}

        # A client's own traceparent is continued: its trace id, Envoy's span under its span.
        client_trace, client_span = secrets.token_hex(16), secrets.token_hex(8)
        reply = await http(
            stack,
            "POST",
            "/api/read/",
            {"keys": ["absent"]},
            token=token,
            headers={"traceparent": f"00-{client_trace}-{client_span}-01"},
        )
        request_id = reply.headers["x-request-id"]
        server_span = await eventually(lambda: server_span_of(exporter, request_id), "the service's span ended")
        assert f"{server_span.context.trace_id:032x}" == client_trace
        gateway_span = await eventually(
            lambda: envoy_span(collector, bytes.fromhex(client_trace), server_span.parent.span_id.to_bytes(8, "big")),
            "Envoy's span of the continued trace",
        )
        assert gateway_span.parent_span_id == bytes.fromhex(client_span)
    finally:
        if gateway is not None:
            await asyncio.to_thread(gateway.stop)
        if harness is not None:
            await stop_services(harness)
        tracing.uninstall()
        await asyncio.to_thread(database.stop)
        await server.stop(None)


async def test_the_services_export_their_spans_by_otlp_when_the_otel_variables_ask(tmp_path, report):
    server, collector, collector_port = await serve_collector()
    stack = Stack(
        tmp_path,
        extra_env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector_port}",
            "OTEL_BSP_SCHEDULE_DELAY": "200",  # export every 0.2 s instead of 5 s
        },
    )
    processes = [tarantool(stack), auth_svc(stack), kv_svc(stack), envoy(stack)]
    try:
        for process in processes:
            await asyncio.to_thread(process.start)
        token = await login(stack)
        reply = await http(stack, "GET", "/v2/namespaces/me/pairs/absent", token=token)
        assert reply.status == 404, reply.raw
        request_id = reply.headers["x-request-id"]

        def trace_of_request():
            ours = [
                s for name, s in collector.spans if name == "kv_svc" and attribute(s, "tkv.request_id") == request_id
            ]
            if not ours:
                return None
            trace_id = ours[0].trace_id
            in_trace = [(name, s) for name, s in collector.spans if s.trace_id == trace_id]
            names = {name for name, _ in in_trace}
            return in_trace if {"kv_svc", "tkv_gateway"} <= names and len(in_trace) >= 3 else None

        in_trace = await eventually(trace_of_request, "the request's trace exported by kv_svc and Envoy")
        by_id = {s.span_id: (name, s) for name, s in in_trace}
        (service_span,) = [s for name, s in in_trace if s.name == "tkv.kv.v2.KeyValueService/GetPair"]
        assert by_id[service_span.parent_span_id][0] == "tkv_gateway"
        storage_spans = [s for name, s in in_trace if s.parent_span_id == service_span.span_id]
        assert [s.name for s in storage_spans] == ["tarantool tkv.kv_get"]
        report({"request_id": request_id, "trace": tree(in_trace)})
    finally:
        for process in reversed(processes):
            await asyncio.to_thread(process.stop)
        await server.stop(None)
