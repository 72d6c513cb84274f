"""Batch reads and writes against real Tarantool: every rule of docs/api.md, "Read", "Write"."""

import asyncio
import re

import asynctnt
import grpc
import jwt
import pytest
from google.protobuf import json_format, struct_pb2

from tests.inprocess import register_and_login, start_services, stop_services, unique
from tests.status_details import details, expect_error, reason
from tests.tokens_for_tests import bearer
from tkv.kv.v1 import kv_pb2


def write_request(data: dict) -> kv_pb2.WriteRequest:
    return json_format.ParseDict({"data": data}, kv_pb2.WriteRequest())


def as_json(response: kv_pb2.ReadResponse) -> dict:
    return json_format.MessageToDict(response.data)


def nested(depth: int, kind: str):
    value = 42
    for _ in range(depth):
        value = [value] if kind == "list" else {"k": value}
    return value


def stored_count(svc, keys) -> int:
    lua_keys = ", ".join(f"'{k}'" for k in keys)
    return int(
        svc.stack.console(
            f"(function() local n = 0 for _, k in ipairs({{{lua_keys}}}) do "
            f"if box.space.pairs:get({{'', k}}) then n = n + 1 end end return n end)()"
        )
    )


async def test_values_of_every_json_type_round_trip_exactly(svc, auth_md):
    prefix = unique()
    data = {
        f"{prefix}null": None,
        f"{prefix}true": True,
        f"{prefix}false": False,
        f"{prefix}int": 42,
        f"{prefix}neg": -1.5,
        f"{prefix}big": 2**53,
        f"{prefix}tiny": 5e-324,
        f"{prefix}str": 'ünï "q" \\ \n',
        f"{prefix}empty_str": "",
        f"{prefix}arr": [1, "two", None, [], {}],
        f"{prefix}obj": {"a": {"b": [True, None]}},
        f"{prefix}empty_obj": {},
        f"{prefix}empty_arr": [],
        f"{prefix}deep_list": nested(32, "list"),
        f"{prefix}deep_obj": nested(32, "dict"),
    }
    assert (await svc.kv.Write(write_request(data), metadata=auth_md)).status == "success"
    response = await svc.kv.Read(kv_pb2.ReadRequest(keys=list(data)), metadata=auth_md)
    assert as_json(response) == data


async def test_integers_beyond_2_pow_53_lose_precision_as_documented(svc, auth_md):
    key = unique()
    await svc.kv.Write(write_request({key: 2**53 + 1}), metadata=auth_md)
    value = (await svc.kv.Read(kv_pb2.ReadRequest(keys=[key]), metadata=auth_md)).data[key]
    assert value == float(2**53)


async def test_write_skips_existing_keys_and_reports_them_in_request_order(svc, auth_md):
    a, b, c, d = (unique(p) for p in "zamb")
    await svc.kv.Write(write_request({a: "old-a", c: "old-c"}), metadata=auth_md)
    # Request order c, b, a, d: both existing keys come back in that order, not sorted.
    request = kv_pb2.WriteRequest()
    for key, value in ((c, "new"), (b, "new"), (a, "new"), (d, "new")):
        request.data[key] = value
    order = [e.key for e in _wire_entries(request)]
    response = await svc.kv.Write(request, metadata=auth_md)
    expected = [k for k in order if k in (a, c)]
    assert list(response.skipped_keys) == expected
    assert response.status == (
        f"success, but these keys have not been written: {' '.join(expected)}. "
        "Because they have already been in kv store"
    )
    read = as_json(await svc.kv.Read(kv_pb2.ReadRequest(keys=[a, b, c, d]), metadata=auth_md))
    assert read == {a: "old-a", b: "new", c: "old-c", d: "new"}


def _wire_entries(request):
    from tkv.internal.v1 import write_view_pb2

    return [
        type("E", (), {"key": f.key.decode()})
        for f in write_view_pb2.WriteRequestView.FromString(request.SerializeToString()).data.fields
    ]


async def test_read_of_absent_keys_lists_every_one_and_returns_nothing(svc, auth_md):
    present, gone1, gone2 = unique(), unique("gone"), unique("gone")
    await svc.kv.Write(write_request({present: 1}), metadata=auth_md)
    error = await expect_error(
        svc.kv.Read(kv_pb2.ReadRequest(keys=[gone1, present, gone2]), metadata=auth_md), grpc.StatusCode.NOT_FOUND
    )
    assert error.details() == f"These keys don't exist: {gone1} {gone2}"
    assert reason(error) == "KEYS_NOT_FOUND"


async def test_duplicates_win_over_absent_keys(svc, auth_md):
    error = await expect_error(
        svc.kv.Read(kv_pb2.ReadRequest(keys=["nope1", "nope2", "nope1"]), metadata=auth_md),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert error.details() == "Incorrect keys: you cannot pass identical keys: nope1"


@pytest.mark.parametrize("request_", [kv_pb2.ReadRequest(), kv_pb2.ReadRequest(keys=[""])])
async def test_empty_read_is_invalid(svc, auth_md, request_):
    error = await expect_error(svc.kv.Read(request_, metadata=auth_md), grpc.StatusCode.INVALID_ARGUMENT)
    assert reason(error) == "INVALID_KEYS"


async def test_empty_write_is_invalid(svc, auth_md):
    error = await expect_error(svc.kv.Write(kv_pb2.WriteRequest(), metadata=auth_md), grpc.StatusCode.INVALID_ARGUMENT)
    assert details(error)[1] == [("data", "Incorrect keys: you have not passed any keys")]
    assert reason(error) == "INVALID_PAIRS"


async def test_a_response_over_the_services_limit_is_refused_not_sent(stack):
    # TKV_MAX_RESPONSE_BYTES: a larger answer is refused with a reason, not half-sent.
    small = await start_services(stack, TKV_MAX_RESPONSE_BYTES=str(64 * 1024))
    try:
        _, token = await register_and_login(small)
        key = unique()
        await small.kv.Write(write_request({key: "x" * (100 * 1024)}), metadata=bearer(token))
        error = await expect_error(
            small.kv.Read(kv_pb2.ReadRequest(keys=[key]), metadata=bearer(token)), grpc.StatusCode.INVALID_ARGUMENT
        )
        size = json_format.ParseDict({"data": {key: "x" * (100 * 1024)}}, kv_pb2.ReadResponse()).ByteSize()
        assert reason(error) == "RESPONSE_TOO_LARGE"
        # Storage refuses before sending the rows, by their stored size plus an upper bound of
        # the metadata an answer adds per pair.
        said = re.fullmatch(
            r"Incorrect keys: the answer would be (\d+) bytes, more than the 65536 a response may hold;"
            r" read these keys in smaller batches",
            error.details(),
        )
        assert said and size <= int(said[1]) <= size + 128
    finally:
        await stop_services(small)


async def test_storage_refuses_a_v1_answer_over_the_limit_before_sending_it(svc, auth_md):
    # kv_svc checks the encoded answer too, so only a call of the stored function, as kv_svc
    # makes it, tells that storage refused first (tkv/kv.lua v1_read).
    key = unique()
    await svc.kv.Write(write_request({key: "x" * 2000}), metadata=auth_md)
    answers = {
        limit: svc.stack.console(
            "(function() local status, size, limit = require('tkv.kv').v1_read(nil, "
            f"{{'{key}'}}, {limit}, true) if status ~= 'too_large' then return status end "
            "return status .. ' ' .. size .. ' ' .. limit end)()"
        ).split()
        for limit in (2000, 4000)
    }
    assert answers[2000][0] == "too_large", answers[2000]
    _, size, limit = answers[2000]
    assert limit == "2000" and 2000 < int(size) <= 2000 + len(key) + 128
    assert answers[4000][0] == "ok"


async def test_1000_keys_are_accepted_and_1001_rejected_with_nothing_written(svc, auth_md):
    prefix = unique()
    keys = [f"{prefix}-{i}" for i in range(1001)]
    error = await expect_error(
        svc.kv.Write(write_request({k: i for i, k in enumerate(keys)}), metadata=auth_md),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert error.details() == "Incorrect keys: you cannot pass more than 1000 keys at once (got 1001)"
    assert stored_count(svc, keys[:50]) == 0

    response = await svc.kv.Write(write_request({k: i for i, k in enumerate(keys[:1000])}), metadata=auth_md)
    assert response.status == "success"
    read = await svc.kv.Read(kv_pb2.ReadRequest(keys=keys[:1000]), metadata=auth_md)
    assert len(read.data.fields) == 1000
    await expect_error(svc.kv.Read(kv_pb2.ReadRequest(keys=keys), metadata=auth_md), grpc.StatusCode.INVALID_ARGUMENT)


async def test_key_length_limit_is_1024_bytes(svc, auth_md):
    ok = unique() + "x" * (1024 - 13)
    assert len(ok.encode()) == 1024
    await svc.kv.Write(write_request({ok: 1}), metadata=auth_md)
    too_long = ok + "y"
    error = await expect_error(
        svc.kv.Write(write_request({too_long: 1}), metadata=auth_md), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert error.details() == (
        f"Incorrect keys: a key should be no more than 1024 bytes of UTF-8 (key {too_long[:40]}...: 1025 bytes)"
    )


async def test_a_bad_pair_rejects_the_whole_batch(svc, auth_md):
    good, deep = unique(), unique()
    error = await expect_error(
        svc.kv.Write(write_request({good: 1, deep: nested(33, "dict")}), metadata=auth_md),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert error.details() == (
        f"Incorrect value of the key {deep} (it is nested deeper than 32 levels of objects/arrays)"
    )
    assert details(error)[1][0][0] == f'data["{deep}"]'
    assert stored_count(svc, [good, deep]) == 0


async def test_a_key_repeated_on_the_wire_is_rejected_not_collapsed(svc, auth_md):
    key = unique()
    entry = _entry(key, 1) + _entry(key, 2)
    raw = bytes([0x0A]) + _varint(len(entry)) + entry
    call = svc.channels[1].unary_unary(
        "/tkv.kv.v1.KeyValueService/Write",
        request_serializer=lambda b: b,
        response_deserializer=kv_pb2.WriteResponse.FromString,
    )
    error = await expect_error(call(raw, metadata=auth_md), grpc.StatusCode.INVALID_ARGUMENT)
    assert error.details() == f"Incorrect keys: you cannot pass identical keys: {key}"
    assert stored_count(svc, [key]) == 0


def _entry(key: str, number: float) -> bytes:
    body = bytes([0x0A]) + _varint(len(key)) + key.encode()
    value = struct_pb2.Value(number_value=number).SerializeToString()
    body += bytes([0x12]) + _varint(len(value)) + value
    return bytes([0x0A]) + _varint(len(body)) + body


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


async def test_concurrent_writers_of_one_new_key_exactly_one_wins(svc, auth_md):
    key = unique()
    responses = await asyncio.gather(
        *(svc.kv.Write(write_request({key: f"writer-{i}"}), metadata=auth_md) for i in range(25))
    )
    winners = [i for i, r in enumerate(responses) if not r.skipped_keys]
    assert len(winners) == 1
    assert all(list(r.skipped_keys) == [key] for i, r in enumerate(responses) if i != winners[0])
    stored = (await svc.kv.Read(kv_pb2.ReadRequest(keys=[key]), metadata=auth_md)).data[key]
    assert stored == f"writer-{winners[0]}"


async def test_a_value_near_the_request_limit_writes_and_reads_back(svc, auth_md):
    key = unique()
    big = "x" * (3 * 1024 * 1024 + 512 * 1024)  # 3.5 MiB, above Tarantool's default 1 MiB tuple cap
    await svc.kv.Write(write_request({key: {"blob": big}}), metadata=auth_md)
    read = await svc.kv.Read(kv_pb2.ReadRequest(keys=[key]), metadata=auth_md)
    assert read.data[key]["blob"] == big


async def test_keys_are_case_sensitive_and_any_utf8(svc, auth_md):
    base = unique()
    data = {base + "K": 1, base + "k": 2, base + " ключ 🔑": 3, base + '"quoted"': 4}
    await svc.kv.Write(write_request(data), metadata=auth_md)
    assert as_json(await svc.kv.Read(kv_pb2.ReadRequest(keys=list(data)), metadata=auth_md)) == data


async def test_a_thousand_absent_keys_still_answer_not_found(svc, auth_md):
    # The status travels in trailers capped at 8 KiB: the message must stay within it.
    keys = [f"absent-{unique()}-{'x' * 40}" for _ in range(1000)]
    error = await expect_error(svc.kv.Read(kv_pb2.ReadRequest(keys=keys), metadata=auth_md), grpc.StatusCode.NOT_FOUND)
    assert error.details().startswith("These keys don't exist: absent-")
    assert error.details().endswith(" more")
    # Past 8 KiB of trailers clients start refusing them (at random, up to a hard limit).
    assert trailer_bytes(error) < 7 * 1024, trailer_bytes(error)


async def test_a_thousand_bad_pairs_with_long_keys_still_answer_invalid_argument(svc, auth_md):
    # Each violation names its key: only an excerpt of it, or twenty of them would pass 8 KiB.
    data = {f"{i}-" + "k" * 1025: i for i in range(1000)}
    error = await expect_error(svc.kv.Write(write_request(data), metadata=auth_md), grpc.StatusCode.INVALID_ARGUMENT)
    listed = len(details(error)[1])
    assert 1 <= listed <= 20
    assert error.details().endswith(f"; and {1000 - listed} more")
    assert trailer_bytes(error) < 7 * 1024, trailer_bytes(error)


def trailer_bytes(error) -> int:
    return len(error.details().encode()) + sum(len(k) + len(v) for k, v in error.trailing_metadata())


async def test_a_thousand_bad_keys_still_answer_invalid_argument(svc, auth_md):
    keys = [f"{i}-" + "k" * 1025 for i in range(1000)]
    error = await expect_error(
        svc.kv.Read(kv_pb2.ReadRequest(keys=keys), metadata=auth_md), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert error.details().endswith("; and 980 more")
    assert len(details(error)[1]) == 20
    assert trailer_bytes(error) < 7 * 1024, trailer_bytes(error)


async def test_values_are_stored_as_messagepack_binary_holding_the_encoded_value(svc, auth_md):
    key = unique()
    await svc.kv.Write(write_request({key: {"a": [1, "x"]}}), metadata=auth_md)
    # The tuple's raw MessagePack: array header, the shared namespace '', the key, then the
    # value's type byte.
    raw = bytes.fromhex(svc.stack.console(f"require('msgpack').encode(box.space.pairs:get({{'', '{key}'}})):hex()"))
    value_at = 1 + 1 + 1 + len(key)  # fixarray header, empty fixstr, fixstr header, key bytes
    assert raw[value_at] == 0xC4  # bin 8 (a small value), not str
    stored = raw[value_at + 2 : value_at + 2 + raw[value_at + 1]]
    assert json_format.MessageToDict(struct_pb2.Value.FromString(stored)) == {"a": [1, "x"]}


async def test_values_stored_as_native_messagepack_are_still_read(svc, auth_md):
    # As written by earlier versions of kv_svc, or by another Tarantool client.
    key, null_key = unique(), unique()
    meta = "1, 1, '', 0, 0, 1"  # version, create_version, owner, update_time, expire_time, size
    svc.stack.console(f"box.space.pairs:insert({{'', '{key}', {{a = {{true, 1.5, 'ü'}}, n = box.NULL}}, {meta}}})")
    svc.stack.console(f"box.space.pairs:insert({{'', '{null_key}', box.NULL, {meta}}})")
    response = await svc.kv.Read(kv_pb2.ReadRequest(keys=[key, null_key]), metadata=auth_md)
    assert as_json(response) == {key: {"a": [True, 1.5, "ü"], "n": None}, null_key: None}


async def test_kv_read_answers_pair_tuples_unless_asked_for_the_values_alone(svc, auth_md, token):
    # kv_svc asks for the values alone (tkv/kv.lua v1_read values_only); kv_svc of an earlier
    # release, still running while an upgrade replaces it, asks without and gets the pairs.
    key = unique()
    await svc.kv.Write(write_request({key: {"a": 1}}), metadata=auth_md)
    claims = jwt.decode(token, options={"verify_signature": False})
    args = [claims["jti"], claims["sub"], claims["account_id"], claims["token_epoch"], [key], 1 << 20]
    password = (svc.stack.data_dir / "secrets" / "tarantool-tkv_kv.password").read_text().strip()
    conn = asynctnt.Connection(host="127.0.0.1", port=svc.stack.tarantool_port, username="tkv_kv", password=password)
    await conn.connect()
    try:
        pairs = await conn.call("tkv.kv_read", args)
        values = await conn.call("tkv.kv_read", [*args, True])
    finally:
        await conn.disconnect()
    assert pairs[0] == values[0] == "ok"
    [pair] = pairs[1]
    assert list(pair)[:2] == ["", key]
    assert isinstance(pair[2], bytes)  # MP_BIN as stored
    assert list(values[1]) == [pair[2]]  # the same bytes, still MP_BIN
