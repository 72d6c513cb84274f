"""Conversion between google.protobuf.Value and the plain JSON-like Python values stored
in Tarantool as native MessagePack, with the checks a stored value must pass."""

from __future__ import annotations

import math
from typing import Any

from google.protobuf import struct_pb2
from google.protobuf.message import DecodeError


class InvalidValue(ValueError):
    """Why a value cannot be stored; the message is shown to the client."""


def decode(raw: bytes, max_depth: int) -> Any:
    """Encoded google.protobuf.Value -> plain Python value, or InvalidValue."""
    try:
        value = struct_pb2.Value.FromString(raw)
    except DecodeError:
        raise InvalidValue(
            f"is not a valid google.protobuf.Value or is nested deeper than {max_depth} levels"
        ) from None
    return to_native(value, max_depth)


def to_native(value: struct_pb2.Value, max_depth: int, depth: int = 0) -> Any:
    """`depth` counts the objects/arrays enclosing `value`; more than max_depth fails."""
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return value.string_value
    if kind == "number_value":
        number = value.number_value
        if not math.isfinite(number):
            raise InvalidValue("numbers must be finite (JSON has no NaN or Infinity)")
        return number
    if kind == "bool_value":
        return value.bool_value
    if kind == "null_value":
        return None
    if kind in ("struct_value", "list_value"):
        if depth >= max_depth:
            raise InvalidValue(f"is nested deeper than {max_depth} levels of objects/arrays")
        if kind == "struct_value":
            return {key: to_native(item, max_depth, depth + 1) for key, item in value.struct_value.fields.items()}
        return [to_native(item, max_depth, depth + 1) for item in value.list_value.values]
    raise InvalidValue("has no kind set (a google.protobuf.Value must hold one)")


def fill(target: struct_pb2.Value, native: Any) -> None:
    """Write a plain Python value into `target` in place (no intermediate messages)."""
    if native is None:
        target.null_value = struct_pb2.NULL_VALUE
    elif isinstance(native, bool):
        target.bool_value = native
    elif isinstance(native, (int, float)):
        target.number_value = native
    elif isinstance(native, str):
        target.string_value = native
    elif isinstance(native, dict):
        fields = target.struct_value.fields
        target.struct_value.SetInParent()  # an empty object must stay an object
        for key, item in native.items():
            fill(fields[key], item)
    elif isinstance(native, list):
        values = target.list_value.values
        target.list_value.SetInParent()  # an empty array must stay an array
        for item in native:
            fill(values.add(), item)
    else:
        raise TypeError(f"stored value of unsupported type {type(native).__name__}")
