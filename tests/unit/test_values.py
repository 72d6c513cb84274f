"""google.protobuf.Value <-> stored JSON values: exact round trips and the limits."""

import math

import pytest
from google.protobuf import json_format, struct_pb2

from kv_svc import values


def encoded(native) -> bytes:
    return json_format.ParseDict(native, struct_pb2.Value()).SerializeToString()


def nested(depth: int, kind: str = "list"):
    value = "leaf"
    for _ in range(depth):
        value = [value] if kind == "list" else {"k": value}
    return value


def back_to_json(native):
    target = struct_pb2.Value()
    values.fill(target, native)
    return json_format.MessageToDict(target)


@pytest.mark.parametrize(
    "native",
    [
        None,
        True,
        False,
        0,
        -1.5,
        1e308,
        2**53,
        "",
        'ünïcødé "quoted" \\ \n',
        [],
        {},
        [None, 1, "x", [], {}],
        {"a": {"b": [1, {"c": None}]}, "": "empty key"},
    ],
)
def test_every_json_type_round_trips_exactly(native):
    assert back_to_json(values.decode(encoded(native), 32)) == native


def test_empty_object_and_array_keep_their_kind():
    assert back_to_json({"o": {}, "a": []}) == {"o": {}, "a": []}


@pytest.mark.parametrize("kind", ["list", "dict"])
def test_depth_limit_accepts_exactly_the_limit(kind):
    assert values.decode(encoded(nested(32, kind)), 32) == nested(32, kind)


@pytest.mark.parametrize("kind", ["list", "dict"])
def test_depth_limit_rejects_one_more(kind):
    with pytest.raises(values.InvalidValue, match="deeper than 32"):
        values.decode(encoded(nested(33, kind)), 32)


def test_value_deeper_than_protobuf_allows_is_rejected_not_crashed():
    # 60 list levels = 120 protobuf levels: the parser itself refuses it.
    raw = struct_pb2.Value(string_value="x").SerializeToString()
    for _ in range(60):
        raw = _wrap_list(raw)
    with pytest.raises(values.InvalidValue, match="deeper than 32"):
        values.decode(raw, 32)


def _wrap_list(inner: bytes) -> bytes:
    # Build the wire bytes by hand: Value{list_value(2)=ListValue{values(1)=inner}}.
    def ld(field: int, payload: bytes) -> bytes:
        return bytes([field << 3 | 2]) + _varint(len(payload)) + payload

    return ld(6, ld(1, inner))


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_are_rejected(number):
    with pytest.raises(values.InvalidValue, match="finite"):
        values.decode(struct_pb2.Value(number_value=number).SerializeToString(), 32)


def test_value_without_kind_is_rejected():
    with pytest.raises(values.InvalidValue, match="no kind"):
        values.decode(b"", 32)


def test_garbage_bytes_are_rejected():
    with pytest.raises(values.InvalidValue):
        values.decode(b"\xff\xff\xff", 32)
