"""make bench's hand-spliced requests (bench/loadgen.py) are the messages the public protos
define: a v1 WriteRequest, and the ReadResponse bench/floor.py answers."""

from google.protobuf import json_format

from bench import loadgen
from tkv.kv.v1 import kv_pb2


def test_a_spliced_write_request_parses_as_the_v1_write_request_of_its_keys():
    keys = ["a", "b/é", "k" * 200]  # a key long enough for a two-byte length
    raw = loadgen.value_bytes()
    request = kv_pb2.WriteRequest.FromString(loadgen.struct_message(keys, raw))
    assert sorted(request.data.fields) == sorted(keys)
    assert all(json_format.MessageToDict(request.data.fields[key]) == loadgen.VALUE for key in keys)
    assert kv_pb2.ReadResponse.FromString(loadgen.struct_message(keys, raw)).data == request.data
