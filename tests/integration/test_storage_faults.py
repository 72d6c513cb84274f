"""Tarantool failing under the services: restarts, freezes, mid-batch errors.

Each test here owns its Tarantool process, so killing it disturbs nothing else.
"""

import asyncio
import signal

import grpc
import pytest
from google.protobuf import struct_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.inprocess import register_and_login, start_services, stop_services, unique
from tests.stack import Stack, eventually, tarantool
from tests.status_details import reason
from tests.tokens_for_tests import bearer
from tkv.kv.v1 import kv_pb2
from tkv.kv.v2 import kv_pb2 as v2

pytestmark = pytest.mark.slow


@pytest.fixture
async def own_stack(tmp_path):
    stack = Stack(tmp_path / "faults", extra_env={"TKV_TARANTOOL_CALL_TIMEOUT": "0.5"})
    process = tarantool(stack).start()
    harness = await start_services(stack)
    harness.tarantool = process
    yield harness
    await stop_services(harness)
    process.stop(signal.SIGKILL)


async def read(harness, token, keys):
    # wait_for only guards the test against a hang; the assertion is on the status code.
    return await asyncio.wait_for(harness.kv.Read(kv_pb2.ReadRequest(keys=keys), metadata=bearer(token)), 10)


async def wait_for_code(harness, token, keys, expected, timeout=15.0):
    for _ in range(int(timeout / 0.1)):
        try:
            await read(harness, token, keys)
            code = grpc.StatusCode.OK
        except grpc.aio.AioRpcError as error:
            code = error.code()
        if code == expected:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"still not {expected} after {timeout}s (last {code})")


async def test_tarantool_killed_mid_run_gives_unavailable_then_recovers_with_data(own_stack):
    _, token = await register_and_login(own_stack)
    key = unique()
    await own_stack.kv.Write(kv_pb2.WriteRequest(data={key: "acknowledged"}), metadata=bearer(token))

    own_stack.tarantool.stop(signal.SIGKILL)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await read(own_stack, token, [key])
    assert error.value.code() == grpc.StatusCode.UNAVAILABLE
    assert error.value.details() == "storage is unavailable, retry later"
    assert reason(error.value) == "STORAGE_UNAVAILABLE"
    health = health_pb2_grpc.HealthStub(own_stack.channels[1])

    def health_is(status):
        async def check() -> bool:
            return (await health.Check(health_pb2.HealthCheckRequest())).status == status

        return check

    # The storage watcher looks every 0.25 s.
    await eventually(health_is(health_pb2.HealthCheckResponse.NOT_SERVING), "NOT_SERVING", timeout=2)

    own_stack.tarantool.start()
    await wait_for_code(own_stack, token, [key], grpc.StatusCode.OK)
    assert (await read(own_stack, token, [key])).data[key] == "acknowledged"
    await eventually(health_is(health_pb2.HealthCheckResponse.SERVING), "SERVING again", timeout=2)


async def test_a_frozen_tarantool_answers_unavailable_after_the_default_2_s_call_timeout(tmp_path):
    stack = Stack(tmp_path / "default-timeout")  # TKV_TARANTOOL_CALL_TIMEOUT left at its default
    process = tarantool(stack).start()
    harness = await start_services(stack)
    try:
        _, token = await register_and_login(harness)
        process.send(signal.SIGSTOP)
        started = asyncio.get_running_loop().time()
        try:
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await read(harness, token, ["k"])
        finally:
            process.send(signal.SIGCONT)
        took = asyncio.get_running_loop().time() - started
        assert (error.value.code(), reason(error.value)) == (grpc.StatusCode.UNAVAILABLE, "STORAGE_UNAVAILABLE")
        assert 1.9 <= took < 3.5, took
    finally:
        await stop_services(harness)
        process.stop()


async def test_frozen_tarantool_fails_within_the_call_timeout_then_serves_again(own_stack):
    _, token = await register_and_login(own_stack)
    key = unique()
    await own_stack.kv.Write(kv_pb2.WriteRequest(data={key: 1}), metadata=bearer(token))
    own_stack.tarantool.send(signal.SIGSTOP)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await read(own_stack, token, [key])
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        own_stack.tarantool.send(signal.SIGCONT)
    await wait_for_code(own_stack, token, [key], grpc.StatusCode.OK)


def write_in_order(pairs: list[tuple[str, str]]) -> bytes:
    """An encoded WriteRequest whose entries go on the wire in exactly this order (a
    protobuf map, built by a generated client, would send them in hash order). kv_svc
    keeps the wire order and the stored function inserts in it."""
    data = b"".join(_field(1, _field(1, key.encode()) + _field(2, _string_value(value))) for key, value in pairs)
    return _field(1, data)


def _string_value(text: str) -> bytes:
    return _field(3, text.encode())  # google.protobuf.Value.string_value


def _field(number: int, payload: bytes) -> bytes:
    size, length = bytearray(), len(payload)
    while True:
        size.append((length & 0x7F) | (0x80 if length > 0x7F else 0))
        length >>= 7
        if not length:
            break
    return bytes([number << 3 | 2]) + bytes(size) + payload


@pytest.mark.log_errors_expected("ER_MEMTX_MAX_TUPLE_SIZE")  # Tarantool logs the refused tuple
async def test_a_failure_inside_the_batch_rolls_back_every_pair(tmp_path):
    stack = Stack(tmp_path / "small-tuples", extra_env={"TKV_TARANTOOL_MAX_TUPLE_BYTES": str(64 * 1024)})
    process = tarantool(stack).start()
    harness = await start_services(stack)
    try:
        _, token = await register_and_login(harness)
        small = [unique() for _ in range(3)]
        # The oversized pair comes last, so the three before it are inserted first and only
        # the transaction can take them back.
        raw = write_in_order([*((key, "small") for key in small), (unique("big"), "x" * 100_000)])
        write = harness.channels[1].unary_unary(
            "/tkv.kv.v1.KeyValueService/Write",
            request_serializer=lambda b: b,
            response_deserializer=kv_pb2.WriteResponse.FromString,
        )
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await write(raw, metadata=bearer(token))
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert reason(error.value) == "VALUE_TOO_LARGE"
        for key in small:
            assert stack.console(f"box.space.pairs:get({{'', '{key}'}}) == nil") == "true", key
        assert stack.console("box.space.pairs:len()") == "0"
        # The same request without the oversized pair writes all three: the absence above is
        # the rollback's doing, not a request that never reached storage.
        response = await write(write_in_order([(key, "small") for key in small]), metadata=bearer(token))
        assert list(response.skipped_keys) == []
        assert stack.console("box.space.pairs:len()") == "3"
    finally:
        await stop_services(harness)
        process.stop()


@pytest.mark.log_errors_expected("ER_MEMTX_MAX_TUPLE_SIZE")  # Tarantool logs the refused tuples
async def test_a_failure_inside_a_v2_put_or_delete_rolls_back_every_pair(tmp_path):
    stack = Stack(tmp_path / "small-tuples-v2", extra_env={"TKV_TARANTOOL_MAX_TUPLE_BYTES": str(64 * 1024)})
    process = tarantool(stack).start()
    harness = await start_services(stack)
    try:
        _, token = await register_and_login(harness)
        md = bearer(token)

        def state() -> tuple[str, str, str]:
            """The pairs, the revision and the usage charged to anyone, as stored."""
            return (
                stack.console("box.space.pairs:len()"),
                stack.console("require('tkv.store').revision()"),
                stack.console(
                    "(function() local p, b = 0, 0 for _, u in box.space.usage:pairs() do "
                    "p, b = p + u.pairs, b + u.bytes end return p .. ' ' .. b end)()"
                ),
            )

        # Put: the oversized pair comes last, so the pairs before it are written first and
        # only the transaction can take them back.
        before = state()
        small = [v2.PairToPut(key=unique(), value=struct_pb2.Value(string_value="small")) for _ in range(3)]
        big = v2.PairToPut(key=unique("big"), value=struct_pb2.Value(string_value="x" * 100_000))
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await harness.kv2.BatchPutPairs(v2.BatchPutPairsRequest(namespace="me", pairs=[*small, big]), metadata=md)
        assert (error.value.code(), reason(error.value)) == (grpc.StatusCode.INVALID_ARGUMENT, "VALUE_TOO_LARGE")
        assert state() == before
        # Delete: pairs with long keys, written in batches small enough for the change log's
        # rows, then deleted in one batch whose change-log row (80 long keys) cannot fit a
        # tuple: every pair is deleted before that row is written.
        keys = [unique() + "k" * 1000 for _ in range(80)]
        for first in range(0, len(keys), 20):
            batch = [v2.PairToPut(key=k, value=struct_pb2.Value(number_value=1)) for k in keys[first : first + 20]]
            await harness.kv2.BatchPutPairs(v2.BatchPutPairsRequest(namespace="me", pairs=batch), metadata=md)
        before = state()
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await harness.kv2.BatchDeletePairs(v2.BatchDeletePairsRequest(namespace="me", keys=keys), metadata=md)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert state() == before
        # Both batches work in parts: the failures above were the storage's, after each call
        # reached it.
        await harness.kv2.BatchPutPairs(v2.BatchPutPairsRequest(namespace="me", pairs=small), metadata=md)
        await harness.kv2.BatchDeletePairs(v2.BatchDeletePairsRequest(namespace="me", keys=keys[:20]), metadata=md)
        assert stack.console("box.space.pairs:len()") == str(80 + 3 - 20)
    finally:
        await stop_services(harness)
        process.stop()
