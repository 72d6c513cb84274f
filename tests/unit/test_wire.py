"""kv_svc/wire.py's hand-spliced answers equal what the generated messages encode."""

from google.protobuf import json_format, struct_pb2

from kv_svc import values, wire
from tkv.kv.v2 import kv_pb2


def stored(key, native, *, version=7, create_version=3, owner="Alice", update_time=1.5, expire_time=0.0):
    blob = values.native_to_bytes(native) if native is not None else None
    return ["alice", key, blob, version, create_version, owner, update_time, expire_time, 10]


def expected_pair(key, native, *, version=7, create_version=3, owner="Alice", update_time=1.5, expire_time=0.0):
    pair = kv_pb2.Pair(key=key, version=version, create_version=create_version, owner=owner)
    if native is not None:
        pair.value.CopyFrom(json_format.ParseDict(native, struct_pb2.Value()))
    # Both times in the tests are exact in binary: whole seconds and a power-of-two fraction.
    pair.update_time.FromMilliseconds(round(update_time * 1000))
    if expire_time:
        pair.expire_time.FromMilliseconds(round(expire_time * 1000))
    return pair


def test_a_pair_has_every_field_the_message_has():
    row = stored("ключ/1", {"a": [1, None, "x"]}, expire_time=1796166970.25)
    assert kv_pb2.Pair.FromString(wire.pair(row)) == expected_pair(
        "ключ/1", {"a": [1, None, "x"]}, expire_time=1796166970.25
    )


def test_keys_only_rows_unknown_owners_and_large_versions_encode_too():
    row = stored("k", None, owner="", version=2**40, create_version=1)
    assert kv_pb2.Pair.FromString(wire.pair(row)) == expected_pair("k", None, owner="", version=2**40, create_version=1)


def test_values_stored_as_native_messagepack_are_converted():
    row = stored("k", None)
    row[2] = {"native": True}
    assert native_value(kv_pb2.Pair.FromString(wire.pair(row))) == {"native": True}


def native_value(pair):
    return json_format.MessageToDict(pair.value)


def test_batch_get_and_page_answers_equal_the_generated_messages():
    rows = [stored("a", 1), stored("b", "two")]
    assert kv_pb2.BatchGetPairsResponse.FromString(wire.pairs_and_keys(rows, ["x", "y"])) == (
        kv_pb2.BatchGetPairsResponse(pairs=[expected_pair("a", 1), expected_pair("b", "two")], missing_keys=["x", "y"])
    )
    assert kv_pb2.ListPairsResponse.FromString(wire.page(rows, "tok", 42)) == kv_pb2.ListPairsResponse(
        pairs=[expected_pair("a", 1), expected_pair("b", "two")], next_page_token="tok", revision=42
    )
    assert wire.page([], "", 0) == b""
