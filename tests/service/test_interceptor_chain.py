"""Interceptor chain on real servers: auth checks, error mapping, hidden internals, logs."""

import asyncio
import logging
import re
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.stack import within
from tests.status_details import details, reason
from tests.tokens_for_tests import bearer, sign
from tkv.auth.v1 import auth_pb2
from tkv.kv.v1 import kv_pb2
from tkv.kv.v2 import kv_pb2 as kv2_pb2
from tkv_common.errors import Unavailable

SERVICES = [
    auth_pb2.DESCRIPTOR.services_by_name["AuthService"],
    kv_pb2.DESCRIPTOR.services_by_name["KeyValueService"],
    kv2_pb2.DESCRIPTOR.services_by_name["KeyValueService"],
]
PUBLIC = {"/tkv.auth.v1.AuthService/Register", "/tkv.auth.v1.AuthService/Login", "/tkv.auth.v1.AuthService/GetJwks"}
PROTOS = Path(__file__).resolve().parents[2] / "protos"


def test_the_token_checks_below_cover_every_service_in_the_protos():
    declared = set()
    for proto in PROTOS.rglob("*.proto"):
        text = proto.read_text()
        package = re.search(r"^package ([\w.]+);", text, re.M).group(1)
        declared |= {f"{package}.{name}" for name in re.findall(r"^service (\w+)", text, re.M)}
    assert declared == {s.full_name for s in SERVICES}


def harness_for(service_name, auth, kv):
    return auth if service_name.startswith("tkv.auth") else kv


@pytest.mark.parametrize(
    "method",
    [m for s in SERVICES for m in s.methods if f"/{s.full_name}/{m.name}" not in PUBLIC],
    ids=lambda m: m.full_name,
)
async def test_every_non_public_method_requires_a_token(auth, kv, method):
    path = f"/{method.containing_service.full_name}/{method.name}"
    harness = harness_for(method.containing_service.full_name, auth, kv)
    raw = {"request_serializer": lambda b: b, "response_deserializer": lambda b: b}
    with pytest.raises(grpc.aio.AioRpcError) as error:
        if method.server_streaming:
            async for _ in harness.channel.unary_stream(path, **raw)(b""):
                pass
        else:
            await harness.channel.unary_unary(path, **raw)(b"")
    assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert reason(error.value) == "TOKEN_MISSING"
    assert harness.storage.calls == []


async def test_public_methods_need_no_token(auth):
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await auth.stub.Register(auth_pb2.RegisterRequest(login="x"))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_two_authorization_headers_are_rejected(kv, data_dir):
    token = sign(data_dir)
    metadata = (("authorization", f"Bearer {token}"), ("authorization", f"Bearer {token}"))
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await kv.stub.Read(kv_pb2.ReadRequest(keys=["a"]), metadata=metadata)
    assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert kv.storage.calls == []


@pytest.mark.log_errors_expected("unhandled error")
async def test_unexpected_error_is_internal_without_details_and_logged_with_traceback(kv, data_dir, caplog):
    kv.storage.answers["tkv.kv_read"] = RuntimeError("secret detail /etc/passwd")
    with caplog.at_level(logging.ERROR), pytest.raises(grpc.aio.AioRpcError) as error:
        await kv.stub.Read(kv_pb2.ReadRequest(keys=["a"]), metadata=bearer(sign(data_dir)))
    assert error.value.code() == grpc.StatusCode.INTERNAL
    assert error.value.details() == "internal error"
    assert "secret" not in str(error.value.trailing_metadata())
    [record] = [r for r in caplog.records if r.msg == "unhandled error"]
    assert "secret detail" in "".join(logging.Formatter().formatException(record.exc_info))


async def test_storage_unavailable_is_unavailable(kv, data_dir):
    kv.storage.answers["tkv.kv_read"] = Unavailable("storage is unavailable, retry later")
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await kv.stub.Read(kv_pb2.ReadRequest(keys=["a"]), metadata=bearer(sign(data_dir)))
    assert error.value.code() == grpc.StatusCode.UNAVAILABLE
    assert reason(error.value) == "STORAGE_UNAVAILABLE"


async def test_undecodable_request_is_invalid_argument_not_internal(kv, data_dir):
    # ReadRequest.keys (field 1, string) holding invalid UTF-8.
    call = kv.channel.unary_unary(
        "/tkv.kv.v1.KeyValueService/Read", request_serializer=lambda b: b, response_deserializer=lambda b: b
    )
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call(b"\x0a\x02\xff\xfe", metadata=bearer(sign(data_dir)))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason(error.value) == "MALFORMED_REQUEST"
    assert kv.storage.calls == []


async def test_request_over_the_size_limit_is_resource_exhausted(kv, data_dir):
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await kv.stub.Read(kv_pb2.ReadRequest(keys=["k" * 1000] * 100), metadata=bearer(sign(data_dir)))
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert kv.storage.calls == []


async def test_validation_runs_before_storage(kv, data_dir):
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await kv.stub.Read(kv_pb2.ReadRequest(keys=["a", "b", "a"]), metadata=bearer(sign(data_dir)))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    _, violations = details(error.value)
    assert violations == [("keys", "Incorrect keys: you cannot pass identical keys: a")]
    assert kv.storage.calls == []


async def test_access_log_names_method_and_code_but_never_the_token(kv, data_dir, caplog):
    token = sign(data_dir)
    kv.storage.answers["tkv.kv_read"] = ["missing", ["a"]]
    with caplog.at_level(logging.INFO, logger="tkv.access"):
        with pytest.raises(grpc.aio.AioRpcError):
            await kv.stub.Read(kv_pb2.ReadRequest(keys=["a"]), metadata=bearer(token))
        # The server writes its access line once the call is over, which may be after the
        # client has its answer (under load in `make test` the check once came first).
        for _ in range(200):
            lines = [r for r in caplog.records if r.name == "tkv.access"]
            if lines:
                break
            await asyncio.sleep(0.01)
    [line] = lines
    assert (line.method, line.code) == ("/tkv.kv.v1.KeyValueService/Read", "NOT_FOUND")
    assert line.duration_ms >= 0
    assert token not in caplog.text


async def test_health_follows_the_storage_connection(kv):
    stub = health_pb2_grpc.HealthStub(kv.channel)
    service = "tkv.kv.v1.KeyValueService"
    serving, not_serving = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING
    assert (await stub.Check(health_pb2.HealthCheckRequest(service=service))).status == serving
    watch = stub.Watch(health_pb2.HealthCheckRequest(service=service))
    updates = aiter(watch)

    async def next_status_other_than(status) -> int:
        # The storage watcher polls every 0.25 s; 5 s bounds a test that would otherwise hang.
        while (update := await within(anext(updates), 5, "a health update")).status == status:
            pass
        return update.status

    try:
        assert (await within(anext(updates), 5, "the first health update")).status == serving
        kv.storage.is_connected = False
        assert await next_status_other_than(serving) == not_serving
        kv.storage.is_connected = True
        assert await next_status_other_than(not_serving) == serving
    finally:
        kv.storage.is_connected = True
        watch.cancel()


async def test_reflection_lists_the_api_health_and_reflection(auth):
    stub = reflection_pb2_grpc.ServerReflectionStub(auth.channel)
    responses = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    async for response in responses:
        names = {s.name for s in response.list_services_response.service}
        break
    assert names == {"tkv.auth.v1.AuthService", "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"}
