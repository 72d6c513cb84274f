"""The error -> google.rpc.Status mapping and settings parsing."""

import grpc
import pytest
from google.rpc import error_details_pb2

from auth_svc.config import AuthSettings
from kv_svc.config import KvSettings
from tkv_common.errors import (
    GRPC_CODES,
    Aborted,
    AlreadyExists,
    FieldViolation,
    InvalidArgument,
    NotFound,
    OutOfRange,
    PermissionDenied,
    ResourceExhausted,
    TkvError,
    TokenRejected,
    Unauthenticated,
    Unavailable,
    to_rpc_status,
)
from tkv_common.settings import Address, ConfigError, Env


def test_every_error_class_has_exactly_one_status_code():
    classes = {
        Aborted,
        AlreadyExists,
        InvalidArgument,
        NotFound,
        OutOfRange,
        PermissionDenied,
        ResourceExhausted,
        Unauthenticated,
        Unavailable,
    }
    assert set(GRPC_CODES) == classes
    assert set(TkvError.__subclasses__()) == classes
    # A subclass takes its parent's code.
    assert TokenRejected.__mro__[1] is Unauthenticated


def test_invalid_argument_carries_error_info_and_bad_request():
    error = InvalidArgument.from_violations(
        [FieldViolation("login", "too short"), FieldViolation("name", "bad")], reason="R"
    )
    status = to_rpc_status(error)
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert status.message == "too short; bad"
    info, bad_request = error_details_pb2.ErrorInfo(), error_details_pb2.BadRequest()
    assert status.details[0].Unpack(info) and info.reason == "R" and info.domain == "tkv"
    assert status.details[1].Unpack(bad_request)
    assert [(v.field, v.description) for v in bad_request.field_violations] == [("login", "too short"), ("name", "bad")]


def test_a_long_list_of_violations_is_cut_with_a_count():
    error = InvalidArgument.from_violations([FieldViolation(f"keys[{i}]", f"rule {i}") for i in range(25)])
    assert error.message == "; ".join(f"rule {i}" for i in range(20)) + "; and 5 more"
    assert len(error.violations) == 20


def test_the_listed_violations_stop_at_2_kib_of_text_but_never_at_none():
    long = [FieldViolation(f"keys[{i}]", f"{i:03d}" + "x" * 497) for i in range(10)]
    error = InvalidArgument.from_violations(long)
    assert [v.field for v in error.violations] == ["keys[0]", "keys[1]", "keys[2]", "keys[3]"]
    assert error.message.endswith("; and 6 more")
    [huge] = InvalidArgument.from_violations([FieldViolation("keys", "y" * 5000)]).violations
    assert huge.description == "y" * 5000


def test_a_rejected_token_is_told_in_the_services_words_with_the_reason_after():
    error = TokenRejected("access token has expired", reason="TOKEN_EXPIRED").refused_as(
        "You have not been authorized!"
    )
    assert error.message == "You have not been authorized! (access token has expired)"
    assert error.reason == "TOKEN_EXPIRED"
    assert to_rpc_status(error).code == grpc.StatusCode.UNAUTHENTICATED.value[0]


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


def test_a_replica_set_is_every_address_comma_separated(tmp_path):
    environ = {"TKV_DATA_DIR": str(tmp_path), "TKV_TARANTOOL_PASSWORD": "pw"}
    settings = KvSettings.from_env({**environ, "TKV_TARANTOOL_ADDR": "127.0.0.1:3301, [::1]:3302"})
    assert [str(a) for a in settings.tarantool.addresses] == ["127.0.0.1:3301", "[::1]:3302"]
    assert settings.tarantool.address == settings.tarantool.addresses[0]
    with pytest.raises(ConfigError, match="TKV_TARANTOOL_ADDR must be host:port, got '3302'"):
        KvSettings.from_env({**environ, "TKV_TARANTOOL_ADDR": "127.0.0.1:3301,3302"})


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
    assert Env({}).int("TKV_KV_MAX_BATCH_KEYS") == 1000
