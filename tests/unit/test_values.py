"""Values between the wire and storage: checks and limits on write, the spliced Read
answer (stored bytes and native MessagePack alike)."""

import math

import pytest
from google.protobuf import json_format, struct_pb2

from kv_svc import values
from tkv.kv.v1 import kv_pb2


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


def checked_json(raw: bytes, max_depth: int = 32):
    """What a client reads back after writing `raw`."""
    return json_format.MessageToDict(struct_pb2.Value.FromString(values.check(raw, max_depth)))


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
    assert checked_json(encoded(native)) == native
    assert back_to_json(native) == native  # values stored as native MessagePack


def test_empty_object_and_array_keep_their_kind():
    assert back_to_json({"o": {}, "a": []}) == {"o": {}, "a": []}


@pytest.mark.parametrize("kind", ["list", "dict"])
def test_depth_limit_accepts_exactly_the_limit(kind):
    assert checked_json(encoded(nested(32, kind))) == nested(32, kind)


@pytest.mark.parametrize("kind", ["list", "dict"])
def test_depth_limit_rejects_one_more(kind):
    with pytest.raises(values.InvalidValue, match="deeper than 32"):
        values.check(encoded(nested(33, kind)), 32)


def test_value_deeper_than_protobuf_allows_is_rejected_not_crashed():
    # 60 list levels = 120 protobuf levels: the parser itself refuses it.
    raw = struct_pb2.Value(string_value="x").SerializeToString()
    for _ in range(60):
        raw = _wrap_list(raw)
    with pytest.raises(values.InvalidValue, match="deeper than 32"):
        values.check(raw, 32)


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
        values.check(struct_pb2.Value(number_value=number).SerializeToString(), 32)


def test_value_without_kind_is_rejected():
    with pytest.raises(values.InvalidValue, match="no kind"):
        values.check(b"", 32)


def test_garbage_bytes_are_rejected():
    with pytest.raises(values.InvalidValue):
        values.check(b"\xff\xff\xff", 32)


def test_unknown_fields_are_not_stored():
    known = struct_pb2.Value(string_value="x").SerializeToString()
    with_unknown = known + b"\xf8\x07\x01"  # field 127, varint 1
    assert struct_pb2.Value.FromString(with_unknown).string_value == "x"
    assert values.check(with_unknown, 32) == known


def _expected_response(pairs: dict) -> kv_pb2.ReadResponse:
    # Built by protobuf's own JSON parser, not by values.fill (the code under test).
    return json_format.ParseDict({"data": pairs}, kv_pb2.ReadResponse())


def test_read_response_splices_stored_bytes_in_request_order():
    pairs = {"b": {"x": [1, None]}, "ключ": "значение", "a": 2.5, "big": "y" * 300}
    stored = [values.check(encoded(native), 32) for native in pairs.values()]
    raw = values.read_response(list(pairs), stored)
    assert kv_pb2.ReadResponse.FromString(raw) == _expected_response(pairs)
    assert raw.index(b"\x0a\x01b") < raw.index("ключ".encode()) < raw.index(b"\x0a\x01a")


def test_read_response_converts_values_stored_as_native_messagepack():
    # As written by earlier versions or other Tarantool clients.
    stored = [{"a": [True, 1.5, "s", {}]}, None]
    assert kv_pb2.ReadResponse.FromString(values.read_response(["n", "null"], stored)) == _expected_response(
        {"n": {"a": [True, 1.5, "s", {}]}, "null": None}
    )


def test_read_response_refuses_a_value_count_that_is_not_the_key_count():
    with pytest.raises(ValueError):
        values.read_response(["a", "b"], [encoded(1)])


def test_read_response_of_nothing_still_has_data():
    assert values.read_response([], []) == b"\x0a\x00"
    assert kv_pb2.ReadResponse.FromString(b"\x0a\x00").HasField("data")


# values.check first tries to prove a value valid by byte searches on its canonical
# encoding and walks the message only when they cannot; the walk is the reference.


def _list_of(*items: bytes) -> bytes:
    """Value{list_value: ListValue{values: items}}, each item an encoded Value."""
    body = b"".join(b"\x0a" + _varint(len(item)) + item for item in items)
    return b"\x32" + _varint(len(body)) + body


def _object_of(**items: bytes) -> bytes:
    """Value{struct_value: Struct{fields: items}}, each item an encoded Value."""
    body = b""
    for key, item in items.items():
        entry = b"\x0a" + _varint(len(key)) + key.encode() + b"\x12" + _varint(len(item)) + item
        body += b"\x0a" + _varint(len(entry)) + entry
    return b"\x2a" + _varint(len(body)) + body


def test_a_nested_value_without_kind_is_rejected_in_a_small_value():
    one = encoded(1)
    for raw in (_list_of(one, b""), _object_of(a=one, b=b""), _list_of(b"\xf8\x07\x01")):  # the last: unknown only
        with pytest.raises(values.InvalidValue, match="no kind"):
            values.check(raw, 32)
    # A map entry with no value field on the wire at all.
    with pytest.raises(values.InvalidValue, match="no kind"):
        values.check(b"\x2a\x05\x0a\x03\x0a\x01a", 32)


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
def test_a_nested_non_finite_number_is_rejected_in_a_small_value(number):
    raw = _object_of(a=_list_of(encoded("x"), struct_pb2.Value(number_value=number).SerializeToString()))
    with pytest.raises(values.InvalidValue, match="finite"):
        values.check(raw, 32)


def test_a_typical_value_is_proven_valid_without_the_walk():
    # bench/loadgen.py's value: the write path's speed rests on this staying true.
    raw = encoded({"name": "benchmark value", "count": 42, "tags": ["a", "b", "c"], "ok": True, "ratio": 0.25})
    assert not values._may_break_rules(raw, 32)


def _random_value(rng, depth: int) -> bytes:
    """Encoded Values of every shape, with the rare bytes the byte searches look for."""
    choice = rng.randrange(12 if depth < 40 else 6)
    if choice == 0:
        return b""  # no kind
    if choice == 1:
        return struct_pb2.Value(number_value=rng.choice([math.nan, math.inf, -math.inf, 0.0])).SerializeToString()
    if choice == 2:
        return struct_pb2.Value(number_value=rng.uniform(-1e6, 1e6)).SerializeToString()
    if choice == 3:
        text = "".join(rng.choice(["a", "\x7f", "\n", "\x00", "2", "*", "ÿ"]) for _ in range(rng.randrange(200)))
        return struct_pb2.Value(string_value=text).SerializeToString()
    if choice == 4:
        return struct_pb2.Value(bool_value=rng.random() < 0.5).SerializeToString()
    if choice == 5:
        return struct_pb2.Value(null_value=0).SerializeToString()
    if choice < 9:
        return _list_of(*(_random_value(rng, depth + 1) for _ in range(rng.randrange(4))))
    keys = rng.sample(["", "a", "b*", "c2", "\x7f"], rng.randrange(4))
    return _object_of(**{key: _random_value(rng, depth + 1) for key in keys})


def _walk_verdict(raw: bytes, max_depth: int) -> str | None:
    try:
        value = struct_pb2.Value.FromString(raw)
    except Exception:
        return "undecodable"
    try:
        values._check(value, max_depth, 0)
    except values.InvalidValue as exc:
        return str(exc)
    return None


@pytest.mark.parametrize("max_depth", [1, 3, 32])
def test_check_agrees_with_the_walk_on_random_values(max_depth):
    import random

    rng = random.Random(max_depth)
    refused = accepted = 0
    for _ in range(3000):
        raw = _random_value(rng, 0)
        try:
            values.check(raw, max_depth)
            verdict = None
        except values.InvalidValue as exc:
            verdict = str(exc)
        expected = _walk_verdict(raw, max_depth)
        if expected == "undecodable":
            continue
        assert verdict == expected, raw
        refused += verdict is not None
        accepted += verdict is None
    assert refused > 300 and accepted > 300  # both verdicts are exercised
