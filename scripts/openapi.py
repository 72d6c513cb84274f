"""The OpenAPI 3.1 description of the HTTP API, made from the protos and the services' limits.

    python scripts/openapi.py OUT.json      (gen_protos.py writes docs/openapi.json with it)

Why our own generator (docs/api-description.md says more): the only one packaged here is
grpc-gateway v1's protoc-gen-swagger, unmaintained and OpenAPI 2 only; gnostic's
protoc-gen-openapi and grpc-gateway v2 need Go modules from outside the registries this
project may use. What a generator must know is small and all in the descriptor set Envoy
transcodes with: each method's google.api.http bindings, its messages and their comments.
What no generator knows is added from one source each:

- the status codes and error bodies: v1's from the gateway's own table (http_api.lua's
  BY_OPERATION), v2's the google.rpc.Status JSON of every gRPC code the API answers with;
- the limits, as schema constraints: from the services' settings at their defaults
  (kv_svc/config.py, auth_svc/users.py, kv_svc/names.py, kv_svc/rules_v2.py), never written twice;
- the paths of the original API as its clients call them: with the trailing slash.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from google.api import annotations_pb2  # noqa: E402
from google.protobuf import descriptor_pb2  # noqa: E402

from auth_svc.users import LOGIN_LENGTH, NAME_LENGTH, PASSWORD_LENGTH  # noqa: E402
from kv_svc.config import KvSettings  # noqa: E402

FieldType = descriptor_pb2.FieldDescriptorProto
DESCRIPTOR = ROOT / "envoy" / "tkv.pb"
V1_PATHS = ("/api/", "/.well-known/")
# Methods anyone may call (auth_svc/server.py PUBLIC_METHODS); every other needs a token.
PUBLIC = {"tkv.auth.v1.AuthService.Register", "tkv.auth.v1.AuthService.Login", "tkv.auth.v1.AuthService.GetJwks"}

# v1: the documented code of a success, and the errors each operation answers with (the
# gateway's mapping in envoy/http_api.template.lua; 413 and 422 on every route with a body).
V1_SUCCESS = {"Register": "201", "Login": "201", "Write": "201"}
V1_ERRORS = {
    "Register": {"400": "A rule of the registration is broken, or the login is taken", "429": "Too many attempts"},
    "Login": {"404": 'Wrong login or password (token "-")', "429": "Locked out for a while: Retry-After"},
    "Logout": {"401": "No token, or a token that is not valid"},
    "Read": {"400": "A key is absent, or a rule of the request is broken", "401": "No valid token"},
    "Write": {"400": "A rule of the request is broken", "401": "No valid token"},
    "GetJwks": {},
}
V1_COMMON = {
    "405": "The path does not take this method (Allow lists those it does)",
    "413": "The body is over the limit",
    "500": "Internal error",
    "503": "The service is unavailable; retry later",
}
V1_WITH_BODY = {"422": "The body is not JSON, or a member has the wrong JSON type"}
# v2: every code the API answers with, as HTTP statuses (the standard mapping), each a
# google.rpc.Status with details (ErrorInfo's reason, BadRequest's field violations, ...).
V2_ERRORS = {
    "400": "INVALID_ARGUMENT (BadRequest lists every field violation) or FAILED_PRECONDITION",
    "401": "UNAUTHENTICATED: no token, or one that is expired, revoked or not valid",
    "403": "PERMISSION_DENIED: the namespace, prefix or pair is not the caller's to use",
    "404": "NOT_FOUND",
    "405": "UNIMPLEMENTED: the path does not take this method (Allow lists those it does)",
    "409": "ABORTED: a version condition failed (the current versions are in the details)",
    "413": "RESOURCE_EXHAUSTED: the body is over the limit",
    "429": "RESOURCE_EXHAUSTED: a quota, the storage, the watch limit or a rate limit",
    "500": "INTERNAL",
    "503": "UNAVAILABLE: retry later",
    "504": "DEADLINE_EXCEEDED",
}


def limits_at_defaults() -> dict[str, Any]:
    """The limits a client meets at the services' default settings."""
    kv = KvSettings.from_env({"TKV_TARANTOOL_PASSWORD": "unused"})
    return {"kv": kv, "max_request_bytes": kv.server.max_request_bytes}


# A TTL from 1 s to kv_svc's TKV_KV_MAX_TTL_SECONDS default, 315360000 s (ten years), as
# a Duration string: digits up to 8 long, or 9 up to the limit, with any fraction below it.
TTL_PATTERN = (
    "^(([1-9][0-9]{0,7}|[12][0-9]{8}|30[0-9]{7}|31[0-4][0-9]{6}|315[0-2][0-9]{5}|3153[0-5][0-9]{4})"
    "(\\.[0-9]{1,9})?|315360000(\\.0{1,9})?)s$"
)
# Fields a request must carry (an absent one is refused); BatchDeletePairs needs keys or pairs.
REQUIRED = {
    "tkv.auth.v1.RegisterRequest": ["login", "password", "name", "surname"],
    "tkv.auth.v1.LoginRequest": ["login", "password"],
    "tkv.auth.v1.ChangePasswordRequest": ["old_password", "new_password"],
    "tkv.auth.v1.DeleteAccountRequest": ["password"],
    "tkv.kv.v1.ReadRequest": ["keys"],
    "tkv.kv.v1.WriteRequest": ["data"],
    "tkv.kv.v2.BatchGetPairsRequest": ["keys"],
    "tkv.kv.v2.BatchPutPairsRequest": ["pairs"],
    "tkv.kv.v2.PairToPut": ["key", "value"],
    "tkv.kv.v2.CreateGrantRequest": ["grantee", "role"],
}
# BatchDeletePairs names its pairs by keys or by pairs, never by both (kv_svc/names.py, kv_svc/rules_v2.py).
_NON_EMPTY = {"keys": {"anyOf": [{"type": "array", "minItems": 1}, {"type": "string"}]},
              "pairs": {"type": "array", "minItems": 1}}  # fmt: skip
EITHER = {
    "tkv.kv.v2.BatchDeletePairsRequest": {
        "anyOf": [{"required": [field], "properties": {field: rule}} for field, rule in _NON_EMPTY.items()],
        "not": {"required": list(_NON_EMPTY), "properties": _NON_EMPTY},
    }
}


def field_constraints(limits: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """(message, field) -> JSON Schema constraints: the rules a request is checked against."""
    kv = limits["kv"]
    key = {
        "minLength": 1,
        "maxLength": kv.limits.max_key_bytes,
        "pattern": "^[^\\u0000]+$",
        "description": f"At most {kv.limits.max_key_bytes} bytes in UTF-8 (maxLength counts characters: "
        "a key of multi-byte characters reaches the limit sooner); no NUL.",
    }
    keys = {"minItems": 1, "maxItems": kv.limits.max_batch_keys, "uniqueItems": True, **key}
    namespace = {"pattern": "^(me|shared|[A-Za-z0-9]{2,64})$"}
    login = {"minLength": LOGIN_LENGTH[0], "maxLength": LOGIN_LENGTH[1], "pattern": "^[A-Za-z0-9]+$"}
    low, high = PASSWORD_LENGTH
    password = {
        "minLength": low,
        "maxLength": high,
        # One of each class (a special character: anything but an ASCII letter or digit),
        # and no control characters (auth_svc/users.py password_violations).
        "pattern": f"^(?=.*[a-z])(?=.*[A-Z])(?=.*[0-9])(?=.*[^A-Za-z0-9])[^\\x00-\\x1f\\x7f-\\x9f]{{{low},{high}}}$",
        # OpenAPI's hint that the value is a secret (a UI masks it). It also names the values
        # tests/contract/hooks.py draws directly: a generator cannot draw from a pattern with
        # lookaheads, only draw and filter, and gives up on most draws.
        "format": "password",
    }
    name = {"minLength": NAME_LENGTH[0], "maxLength": NAME_LENGTH[1], "pattern": "^[A-Za-z]+(-[A-Za-z]+)*$"}
    page_size = {
        "minimum": 0,
        "description": f"0: {kv.v2.default_page_size}; more than {kv.v2.max_page_size} is served as "
        f"{kv.v2.max_page_size}. Fewer come back when their size would pass the answer's limit.",
    }
    prefix = {k: v for k, v in key.items() if k in ("maxLength", "pattern")}
    prefix["pattern"] = "^[^\\u0000]*$"
    v2 = "tkv.kv.v2."
    constraints = {
        ("tkv.auth.v1.RegisterRequest", "login"): login,
        ("tkv.auth.v1.RegisterRequest", "password"): password,
        ("tkv.auth.v1.RegisterRequest", "name"): name,
        ("tkv.auth.v1.RegisterRequest", "surname"): name,
        ("tkv.auth.v1.ChangePasswordRequest", "new_password"): password,
        ("tkv.kv.v1.ReadRequest", "keys"): keys,
        (v2 + "ListPairsRequest", "page_size"): page_size,
        (v2 + "ListPairsRequest", "prefix"): prefix,
        (v2 + "WatchRequest", "prefix"): prefix,
        (v2 + "WatchRequest", "key"): prefix,
        (v2 + "CreateGrantRequest", "prefix"): prefix,
        (v2 + "DeleteGrantRequest", "prefix"): prefix,
        (v2 + "CreateGrantRequest", "grantee"): login,
        (v2 + "CreateGrantRequest", "role"): {"enum": ["READER", "WRITER"]},
        (v2 + "PutPairRequest", "ttl"): {"pattern": TTL_PATTERN},
        (v2 + "PairToPut", "ttl"): {"pattern": TTL_PATTERN},
        (v2 + "DeleteGrantRequest", "grantee"): login,
    }
    for message in ("GetPairRequest", "PutPairRequest", "DeletePairRequest", "PairToPut", "KeyToDelete"):
        constraints[(v2 + message, "key")] = key
    constraints[(v2 + "BatchGetPairsRequest", "keys")] = keys
    constraints[(v2 + "BatchDeletePairsRequest", "keys")] = {k: v for k, v in keys.items() if k != "minItems"}
    for message in ("PutPairRequest", "PairToPut", "DeletePairRequest", "KeyToDelete"):
        # 0: only if absent; N: only if the version is N.
        constraints[(v2 + message, "expected_version")] = {
            "pattern": "^[0-9]{1,18}$", "minimum": 0, "maximum": 2**63 - 1,
        }  # fmt: skip
    data_keys = {k: v for k, v in key.items() if k in ("minLength", "maxLength", "pattern")}
    constraints[("tkv.kv.v1.WriteRequest", "data")] = {
        "minProperties": 1, "maxProperties": kv.limits.max_batch_keys, "propertyNames": data_keys,
    }  # fmt: skip
    constraints[(v2 + "BatchPutPairsRequest", "pairs")] = {"minItems": 1, "maxItems": kv.limits.max_batch_keys}
    for message in ("GetPairRequest", "BatchGetPairsRequest", "PutPairRequest", "BatchPutPairsRequest",
                    "DeletePairRequest", "BatchDeletePairsRequest", "ListPairsRequest", "WatchRequest",
                    "CreateGrantRequest", "ListGrantsRequest", "DeleteGrantRequest"):  # fmt: skip
        constraints[(v2 + message, "namespace")] = namespace
    return constraints


class Protos:
    """The messages, enums and comments of a descriptor set."""

    def __init__(self, files: list[descriptor_pb2.FileDescriptorProto]):
        self.files = files
        self._paths: dict[tuple[str, tuple[int, ...]], str] = {}  # (file, location path) -> message
        self._raw: dict[tuple[str, tuple[int, ...]], str] = {}  # (file, location path) -> comment
        self.messages: dict[str, descriptor_pb2.DescriptorProto] = {}
        self.enums: dict[str, descriptor_pb2.EnumDescriptorProto] = {}
        for file in files:
            package = "." + file.package if file.package else ""
            for location in file.source_code_info.location:
                self._comment(file, location)
            for index, message in enumerate(file.message_type):
                self._add(package, message, (4, index), file)
            for enum in file.enum_type:
                self.enums[f"{package}.{enum.name}"] = enum

    def _add(self, scope: str, message, path: tuple[int, ...], file) -> None:
        name = f"{scope}.{message.name}"
        self.messages[name] = message
        self._paths[(file.name, path)] = name
        for index, nested in enumerate(message.nested_type):
            self._add(name, nested, (*path, 3, index), file)
        for enum in message.enum_type:
            self.enums[f"{name}.{enum.name}"] = enum

    def _comment(self, file, location) -> None:
        text = location.leading_comments.strip()
        if text:
            self._raw[(file.name, tuple(location.path))] = " ".join(line.strip() for line in text.splitlines())

    def comment_of_message(self, file: str, path: tuple[int, ...]) -> str:
        return self._raw.get((file, path), "")

    def message_path(self, name: str) -> tuple[str, tuple[int, ...]] | None:
        return next((key for key, value in self._paths.items() if value == name), None)


def _scalar(field: FieldType) -> dict[str, Any]:
    t = field.type
    if t == FieldType.TYPE_STRING:
        return {"type": "string"}
    if t == FieldType.TYPE_BOOL:
        return {"type": "boolean"}
    if t in (FieldType.TYPE_DOUBLE, FieldType.TYPE_FLOAT):
        return {"type": "number"}
    if t in (FieldType.TYPE_INT32, FieldType.TYPE_SINT32, FieldType.TYPE_SFIXED32):
        return {"type": "integer", "format": "int32"}
    if t in (FieldType.TYPE_UINT32, FieldType.TYPE_FIXED32):
        return {"type": "integer", "format": "int32", "minimum": 0}
    if t in (FieldType.TYPE_INT64, FieldType.TYPE_SINT64, FieldType.TYPE_SFIXED64, FieldType.TYPE_UINT64,
             FieldType.TYPE_FIXED64):  # fmt: skip
        # proto3 JSON: a 64-bit integer is written as a string, and read from either.
        return {"type": ["string", "integer"], "format": "int64", "pattern": "^-?[0-9]+$"}
    if t == FieldType.TYPE_BYTES:
        return {"type": "string", "contentEncoding": "base64"}
    raise ValueError(f"unknown field type {t}")


WELL_KNOWN = {
    ".google.protobuf.Value": {"description": "Any JSON value."},
    ".google.protobuf.Struct": {"type": "object", "description": "A JSON object."},
    ".google.protobuf.ListValue": {"type": "array", "description": "A JSON array."},
    # null is read as the field's absence, as protobuf's JSON mapping says.
    ".google.protobuf.Timestamp": {"type": ["string", "null"], "format": "date-time"},
    ".google.protobuf.Duration": {
        "type": ["string", "null"],
        "pattern": "^-?[0-9]+(\\.[0-9]+)?s$",
        "description": 'Seconds with an s: "60s", "1.5s".',
    },
    ".google.protobuf.Any": {"type": "object", "properties": {"@type": {"type": "string"}}, "required": ["@type"]},
}


class Builder:
    def __init__(self, files, limits: dict[str, Any]):
        self.protos = Protos(files)
        self.constraints = field_constraints(limits)
        self.limits = limits
        self.schemas: dict[str, Any] = {}

    def ref(self, type_name: str) -> dict[str, Any]:
        if type_name in WELL_KNOWN:
            return dict(WELL_KNOWN[type_name])
        name = type_name.lstrip(".")
        if name not in self.schemas:
            self.schemas[name] = {}  # recursion guard
            self.schemas[name] = self.message_schema(type_name)
        return {"$ref": f"#/components/schemas/{name}"}

    def field_schema(self, message_name: str, field) -> dict[str, Any]:
        if field.type == FieldType.TYPE_MESSAGE:
            entry = self.protos.messages.get(field.type_name)
            if entry is not None and entry.options.map_entry:
                value = entry.field[1]
                inner = self.ref(value.type_name) if value.type == FieldType.TYPE_MESSAGE else _scalar(value)
                return {"type": "object", "additionalProperties": inner}
            schema = self.ref(field.type_name)
        elif field.type == FieldType.TYPE_ENUM:
            enum = self.protos.enums[field.type_name]
            schema = {"type": "string", "enum": [value.name for value in enum.value]}
        else:
            schema = _scalar(field)
        extra = self.constraints.get((message_name, field.name), {})
        if field.label == FieldType.LABEL_REPEATED:
            item_rules = {k: v for k, v in extra.items() if k not in ("minItems", "maxItems", "uniqueItems")}
            list_rules = {k: v for k, v in extra.items() if k in ("minItems", "maxItems", "uniqueItems")}
            listed = {"type": "array", "items": {**schema, **item_rules}, **list_rules}
            if field.type in (FieldType.TYPE_MESSAGE, FieldType.TYPE_ENUM):
                return listed
            # The gateway's JSON parser reads a bare value where a list is expected as a
            # one-element list (README, "Known leniencies").
            return {"anyOf": [listed, {**schema, **item_rules}]}
        if "$ref" in schema and extra:
            return {"allOf": [schema], **extra}
        return {**schema, **extra}

    def message_schema(self, type_name: str, skip: frozenset[str] = frozenset()) -> dict[str, Any]:
        message = self.protos.messages[type_name]
        name = type_name.lstrip(".")
        properties = {}
        for field in message.field:
            if field.name in skip:
                continue
            schema = self.field_schema(name, field)
            comment = self._field_comment(type_name, field)
            if comment and "description" not in schema:
                schema["description"] = comment
            properties[field.name] = schema
        # Unknown members are ignored by the gateway's JSON parser, as the original API did
        # (README, "Known leniencies"): no additionalProperties: false.
        schema: dict[str, Any] = {"type": "object", "properties": properties, "propertyNames": {"minLength": 1}}
        required = [field for field in REQUIRED.get(name, []) if field in properties]
        if required:
            schema["required"] = required
        schema.update(EITHER.get(name, {}))
        for field in properties:
            if field not in required and name.endswith(("Request", "PairToPut", "KeyToDelete")):
                # protobuf's JSON mapping reads null as the field's absence.
                properties[field] = _nullable(properties[field])
        located = self.protos.message_path(type_name)
        if located and self.protos.comment_of_message(*located):
            schema["description"] = self.protos.comment_of_message(*located)
        return schema

    def _field_comment(self, type_name: str, field) -> str:
        located = self.protos.message_path(type_name)
        if not located:
            return ""
        message = self.protos.messages[type_name]
        index = list(message.field).index(field)
        return self.protos.comment_of_message(located[0], (*located[1], 2, index))


_PAIR = {"namespace": "$request.path.namespace", "key": "$request.path.key"}
# What a client does next with what an answer names (OpenAPI links): the stateful phase of
# tests/contract follows them (register -> login, put -> get -> list -> delete, grants).
LINKS: dict[str, dict[str, Any]] = {
    "auth_v1_Register": {
        "Login": {"operationId": "auth_v1_Login",
                  "requestBody": {"login": "$request.body#/login", "password": "$request.body#/password"}},
    },
    # The token a login returns signs the caller's calls; `me` names the caller's namespace.
    "auth_v1_Login": {
        "PutPair": {"operationId": "kv_v2_PutPair", "parameters": {"namespace": "me"}},
        "BatchPutPairs": {"operationId": "kv_v2_BatchPutPairs", "parameters": {"namespace": "me"}},
        "CreateGrant": {"operationId": "kv_v2_CreateGrant", "parameters": {"namespace": "me"}},
    },
    "kv_v2_PutPair": {
        "GetPair": {"operationId": "kv_v2_GetPair", "parameters": _PAIR},
        "ListPairs": {"operationId": "kv_v2_ListPairs",
                      "parameters": {"namespace": "$request.path.namespace", "prefix": "$request.path.key"}},
        "DeletePair": {"operationId": "kv_v2_DeletePair", "parameters": _PAIR},
    },
    "kv_v2_BatchPutPairs": {
        "BatchGetPairs": {"operationId": "kv_v2_BatchGetPairs",
                          "parameters": {"namespace": "$request.path.namespace"},
                          "requestBody": {"keys": ["$request.body#/pairs/0/key"]}},
        "BatchDeletePairs": {"operationId": "kv_v2_BatchDeletePairs",
                             "parameters": {"namespace": "$request.path.namespace"},
                             "requestBody": {"keys": ["$request.body#/pairs/0/key"]}},
    },
    "kv_v2_CreateGrant": {
        "ListGrants": {"operationId": "kv_v2_ListGrants", "parameters": {"namespace": "$request.path.namespace"}},
        "DeleteGrant": {"operationId": "kv_v2_DeleteGrant",
                        "parameters": {"namespace": "$request.path.namespace", "grantee": "$response.body#/grantee",
                                       "prefix": "$response.body#/prefix"}},
    },
}  # fmt: skip


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    kind = schema.get("type")
    if isinstance(kind, str):
        return {**schema, "type": [kind, "null"]}
    if isinstance(kind, list):
        return schema if "null" in kind else {**schema, "type": [*kind, "null"]}
    if "$ref" in schema or "anyOf" in schema or "allOf" in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    return schema  # any JSON value: null included


def _path_fields(template: str) -> list[str]:
    return re.findall(r"\{([^}=]+)", template)


def _status_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["code", "message"],
        "properties": {
            "code": {"type": "integer", "description": "The gRPC status code."},
            "message": {"type": "string"},
            "details": {"type": "array", "items": dict(WELL_KNOWN[".google.protobuf.Any"])},
        },
        "description": "google.rpc.Status: the error of every v2 call.",
    }


def _message_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["message"],
        "properties": {"message": {"type": "string"}},
        "description": "The original API's error: one sentence (its exact texts in docs/api.md).",
    }


def _errors(schema_ref: str, codes: dict[str, str]) -> dict[str, Any]:
    return {
        code: {"description": text, "content": {"application/json": {"schema": {"$ref": schema_ref}}}}
        for code, text in sorted(codes.items())
    }


def build(descriptor: Path = DESCRIPTOR, limits: dict[str, Any] | None = None) -> dict[str, Any]:
    files = list(descriptor_pb2.FileDescriptorSet.FromString(descriptor.read_bytes()).file)
    builder = Builder(files, limits or limits_at_defaults())
    paths: dict[str, dict[str, Any]] = {}
    for file in files:
        for s_index, service in enumerate(file.service):
            full_service = f"{file.package}.{service.name}"
            for m_index, method in enumerate(service.method):
                rule = method.options.Extensions[annotations_pb2.http]
                for binding in (rule, *rule.additional_bindings):
                    verb = binding.WhichOneof("pattern")
                    if verb in (None, "custom"):
                        continue
                    template = getattr(binding, verb)
                    body = binding.body or rule.body if binding is rule else binding.body
                    operation = _operation(builder, file, s_index, m_index, full_service, method, template, verb,
                                           body, binding is not rule)  # fmt: skip
                    path = template + "/" if template.startswith("/api/") else template
                    paths.setdefault(path, {})[verb] = operation
    schemas = dict(sorted(builder.schemas.items()))
    schemas["google.rpc.Status"] = _status_schema()
    schemas["tkv.Message"] = _message_schema()
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "tkv: the auth and key/value API over HTTP",
            "version": "2",
            "description": "The original API (/api/...) and v2 (/v2/...), as Envoy's gRPC-JSON transcoder "
            "publishes them. Made by scripts/openapi.py from the protos; the rules in docs/api.md. "
            f"Request bodies are at most {builder.limits['max_request_bytes']} bytes (413 above).",
        },
        # Relative: the gateway that serves this document (make run's is http://127.0.0.1:8080).
        "servers": [{"url": "/", "description": "the gateway serving this document"}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "The token of Login (POST /api/login/), valid 30 minutes.",
                }
            },
        },
    }


def _in_query(field, body: str, extra_binding: bool) -> bool:
    """What the body does not carry comes in the query: scalars, and the well-known types
    written as one string (a Duration's "60s"). The received-grants binding has no namespace."""
    if body == "*" or field.name == body or (extra_binding and field.name == "namespace"):
        return False
    return field.type != FieldType.TYPE_MESSAGE or field.type_name in WELL_KNOWN


def _operation(builder: Builder, file, s_index, m_index, full_service, method, template, verb, body, extra_binding):
    name = method.name
    comment = builder.protos.comment_of_message(file.name, (6, s_index, 2, m_index))
    input_type = method.input_type
    in_path = set(_path_fields(template))
    v1 = template.startswith(V1_PATHS)
    operation: dict[str, Any] = {
        "operationId": f"{full_service.split('.')[1]}_{full_service.split('.')[2]}_{name}"
        + ("_received" if extra_binding else ""),
        "tags": [full_service],
        "summary": comment.split(". ")[0][:120] if comment else name,
        "description": comment,
    }
    parameters = []
    message = builder.protos.messages[input_type]
    message_name = input_type.lstrip(".")
    for field in message.field:
        if field.name in in_path:
            schema = builder.field_schema(message_name, field)
            parameter = {"name": field.name, "in": "path", "required": True, "schema": schema}
            if field.name == "key":
                parameter["description"] = "Percent-encoded: any character, / included."
            parameters.append(parameter)
        elif _in_query(field, body, extra_binding):
            schema = builder.field_schema(message_name, field)
            parameters.append({"name": field.name, "in": "query", "required": False, "schema": schema})
    if parameters:
        operation["parameters"] = parameters
    if body == "*":
        schema = builder.message_schema(input_type, frozenset(in_path))
        # The original API refuses an empty body (422); v2 reads none as {}, which a request
        # with nothing required may be.
        needed = v1 or "required" in schema or "anyOf" in schema
        operation["requestBody"] = {"required": needed, "content": {"application/json": {"schema": schema}}}
    elif body:
        field = next(f for f in message.field if f.name == body)
        schema = builder.field_schema(message_name, field)
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema}}}
    output = builder.ref(method.output_type)
    if method.server_streaming:
        output = {"description": "One JSON message per line, as each is sent (the stream does not end "
                  "by itself).", **output}  # fmt: skip
    success = V1_SUCCESS.get(name, "200") if v1 else "200"
    responses = {success: {"description": "OK", "content": {"application/json": {"schema": output}}}}
    if v1:
        errors = {**V1_COMMON, **V1_ERRORS.get(name, {}), **(V1_WITH_BODY if body else {})}
        responses.update(_errors("#/components/schemas/tkv.Message", errors))
    else:
        responses.update(_errors("#/components/schemas/google.rpc.Status", V2_ERRORS))
    links = LINKS.get(operation["operationId"])
    if links:
        responses[success]["links"] = links
    operation["responses"] = dict(sorted(responses.items()))
    if f"{full_service}.{name}" not in PUBLIC:
        operation["security"] = [{"bearer": []}]
    return operation


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: python scripts/openapi.py OUT.json")
    Path(sys.argv[1]).write_text(json.dumps(build(), indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
