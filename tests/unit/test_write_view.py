"""The internal WriteRequestView must stay wire-compatible with tkv.kv.v1.WriteRequest."""

from google.protobuf import descriptor, struct_pb2

from tkv.internal.v1 import write_view_pb2
from tkv.kv.v1 import kv_pb2


def field_layout(message_descriptor):
    return {f.name: (f.number, f.label if hasattr(f, "label") else None) for f in message_descriptor.fields}


def test_view_mirrors_the_field_numbers_of_write_request_and_struct():
    data = kv_pb2.WriteRequest.DESCRIPTOR.fields_by_name["data"]
    view_data = write_view_pb2.WriteRequestView.DESCRIPTOR.fields_by_name["data"]
    assert data.number == view_data.number
    fields = struct_pb2.Struct.DESCRIPTOR.fields_by_name["fields"]
    view_fields = write_view_pb2.StructView.DESCRIPTOR.fields_by_name["fields"]
    assert fields.number == view_fields.number
    entry = fields.message_type
    view_entry = view_fields.message_type
    assert entry.fields_by_name["key"].number == view_entry.fields_by_name["key"].number
    assert entry.fields_by_name["value"].number == view_entry.fields_by_name["value"].number
    assert view_entry.fields_by_name["value"].type == descriptor.FieldDescriptor.TYPE_BYTES


def test_view_keeps_entry_order_and_repeated_keys():
    # A client-side map cannot hold a key twice, so build the wire bytes from entries.
    entries = [("b", 1), ("a", 2), ("b", 3)]
    struct_bytes = b"".join(
        _field(1, _field(1, k.encode()) + _field(2, struct_pb2.Value(number_value=v).SerializeToString()))
        for k, v in entries
    )
    raw = _field(1, struct_bytes)
    collapsed = kv_pb2.WriteRequest.FromString(raw)
    assert len(collapsed.data.fields) == 2  # the map keeps only the last "b"
    view = write_view_pb2.WriteRequestView.FromString(raw)
    assert [f.key for f in view.data.fields] == [b"b", b"a", b"b"]
    assert [struct_pb2.Value.FromString(f.value).number_value for f in view.data.fields] == [1, 2, 3]


def test_view_parses_what_a_normal_client_sends():
    request = kv_pb2.WriteRequest()
    request.data.update({"x": {"nested": [1, 2]}, "y": None})
    view = write_view_pb2.WriteRequestView.FromString(request.SerializeToString())
    assert {f.key for f in view.data.fields} == {b"x", b"y"}


def _field(number: int, payload: bytes) -> bytes:
    return bytes([number << 3 | 2]) + bytes([len(payload)]) + payload
