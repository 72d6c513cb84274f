"""The error -> google.rpc.Status mapping and settings parsing."""

import grpc
import pytest
from google.rpc import error_details_pb2

from auth_svc.config import AuthSettings
from kv_svc.config import KvSettings
from tkv_common.errors import (
    GRPC_CODES,
    AlreadyExists,
    FieldViolation,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    TkvError,
    Unauthenticated,
    Unavailable,
    to_rpc_status,
)
from tkv_common.settings import Address, ConfigError, Env


def test_every_error_class_has_exactly_one_status_code():
    classes = {AlreadyExists, InvalidArgument, NotFound, ResourceExhausted, Unauthenticated, Unavailable}
    assert set(GRPC_CODES) == classes
    assert set(TkvError.__subclasses__()) == classes


def test_invalid_argument_carries_error_info_and_bad_request():
    error = InvalidArgument.from_violations(
        "invalid registration", [FieldViolation("login", "too short"), FieldViolation("name", "bad")], reason="R"
    )
    status = to_rpc_status(error)
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert status.message == "invalid registration: login: too short; name: bad"
    info, bad_request = error_details_pb2.ErrorInfo(), error_details_pb2.BadRequest()
    assert status.details[0].Unpack(info) and info.reason == "R" and info.domain == "tkv"
    assert status.details[1].Unpack(bad_request)
    assert [(v.field, v.description) for v in bad_request.field_violations] == [("login", "too short"), ("name", "bad")]


def test_other_errors_carry_only_error_info():
    status = to_rpc_status(NotFound('keys not found: "a"', reason="KEYS_NOT_FOUND"))
    assert status.code == grpc.StatusCode.NOT_FOUND.value[0]
    assert len(status.details) == 1


def test_settings_defaults_are_local(tmp_path):
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "tarantool-tkv_kv.password").write_text("pw\n")
    settings = KvSettings.from_env({"TKV_DATA_DIR": str(tmp_path)})
    assert str(settings.server.listen) == "127.0.0.1:50052"
    assert str(settings.tarantool.address) == "127.0.0.1:3301"
    assert settings.tarantool.password == "pw"
    assert settings.limits.max_batch_keys == 1000 and settings.limits.max_value_depth == 32
    assert settings.server.max_request_bytes == 4 * 1024 * 1024


def test_auth_settings_default_to_owasp_argon2_and_30_minutes(tmp_path):
    settings = AuthSettings.from_env({"TKV_DATA_DIR": str(tmp_path), "TKV_TARANTOOL_PASSWORD": "x"})
    assert settings.token_ttl_seconds == 1800
    assert (settings.passwords.memory_kib, settings.passwords.time_cost, settings.passwords.parallelism) == (
        19456,
        2,
        1,
    )
    assert str(settings.server.listen) == "127.0.0.1:50051"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"TKV_KV_MAX_BATCH_KEYS": "many"}, "TKV_KV_MAX_BATCH_KEYS must be an integer"),
        ({"TKV_KV_MAX_BATCH_KEYS": "0"}, "at least 1"),
        ({"TKV_KV_LISTEN": "50052"}, "TKV_KV_LISTEN must be host:port"),
        ({"TKV_TARANTOOL_CALL_TIMEOUT": "-1"}, "must be positive"),
        ({"TKV_TARANTOOL_PASSWORD": ""}, "TKV_TARANTOOL_PASSWORD is not set"),
    ],
)
def test_invalid_settings_fail_with_the_variable_named(tmp_path, environ, message):
    with pytest.raises(ConfigError, match=message):
        KvSettings.from_env({"TKV_DATA_DIR": str(tmp_path), "TKV_TARANTOOL_PASSWORD": "x", **environ})


def test_address_parsing():
    assert Address.parse("[::1]:50051") == Address("::1", 50051)
    assert str(Address("::1", 1)) == "[::1]:1"
    assert Env({}).int("X", 5) == 5
