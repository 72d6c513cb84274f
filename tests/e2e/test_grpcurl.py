"""grpcurl against the real processes: reflection, the whole flow, error statuses."""

import uuid

from tests.e2e.conftest import grpcurl_error, grpcurl_ok

AUTH = "tkv.auth.v1.AuthService"
KV = "tkv.kv.v1.KeyValueService"
KV2 = "tkv.kv.v2.KeyValueService"
UNAUTHENTICATED, INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS = 16, 3, 5, 6


def test_reflection_lists_each_services_api_health_and_reflection(processes):
    for address, apis in ((processes.auth, {AUTH}), (processes.kv, {KV, KV2})):
        listed = set(grpcurl_ok(address, "list")["text"].split())
        assert listed == {*apis, "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"}


def test_reflection_describes_the_messages(processes):
    described = grpcurl_ok(processes.kv, "describe", "tkv.kv.v1.WriteResponse")["text"]
    assert "repeated string skipped_keys = 2;" in described


def test_register_login_write_read_logout_through_grpcurl(processes):
    login = f"User{uuid.uuid4().hex[:8]}"
    user = {"login": login, "password": "Secr3t!pass", "name": "Anna-Maria", "surname": "Smith"}
    assert grpcurl_ok(processes.auth, f"{AUTH}/Register", data=user) == {
        "message": "You have been successfully registered!"
    }
    taken = grpcurl_error(processes.auth, f"{AUTH}/Register", data={**user, "login": login.lower()})
    assert (taken["code"], taken["message"]) == (ALREADY_EXISTS, "A user with this login is already exists")

    token = grpcurl_ok(processes.auth, f"{AUTH}/Login", data={"login": login.upper(), "password": "Secr3t!pass"})[
        "token"
    ]
    key = f"k-{uuid.uuid4().hex}"
    written = grpcurl_ok(processes.kv, f"{KV}/Write", token=token, data={"data": {key: {"n": [1, None, "x"]}}})
    assert written == {"status": "success"}
    again = grpcurl_ok(processes.kv, f"{KV}/Write", token=token, data={"data": {key: 2}})
    assert again["skipped_keys"] == [key]
    assert grpcurl_ok(processes.kv, f"{KV}/Read", token=token, data={"keys": [key]}) == {
        "data": {key: {"n": [1, None, "x"]}}
    }

    missing = grpcurl_error(processes.kv, f"{KV}/Read", token=token, data={"keys": [key, "nope-1", "nope-2"]})
    assert (missing["code"], missing["message"]) == (NOT_FOUND, "These keys don't exist: nope-1 nope-2")

    assert grpcurl_ok(processes.auth, f"{AUTH}/Logout", token=token) == {
        "message": "You have been successfully logout from your account! The token has been revoked."
    }
    revoked = grpcurl_error(processes.kv, f"{KV}/Read", token=token, data={"keys": [key]})
    assert (revoked["code"], revoked["message"]) == (
        UNAUTHENTICATED,
        "You are not authorized! Please, sign in or sign up (access token has been revoked)",
    )


def test_invalid_registration_lists_every_field_in_the_bad_request_detail(processes):
    error = grpcurl_error(
        processes.auth, f"{AUTH}/Register", data={"login": "a", "password": "x", "name": "-", "surname": "1"}
    )
    assert error["code"] == INVALID_ARGUMENT
    [bad_request] = [d for d in error["details"] if d["@type"].endswith("google.rpc.BadRequest")]
    fields = ["login", "password", "password", "password", "password", "name", "name", "surname", "surname"]
    assert [v["field"] for v in bad_request["field_violations"]] == fields
    assert error["message"] == "; ".join(v["description"] for v in bad_request["field_violations"])


def test_calls_without_a_token_are_unauthenticated(processes):
    for address, method, data, refusal in (
        (processes.kv, f"{KV}/Read", {"keys": ["a"]}, "You are not authorized! Please, sign in or sign up"),
        (processes.auth, f"{AUTH}/Logout", {}, "You have not been authorized!"),
    ):
        error = grpcurl_error(address, method, data=data)
        assert error["code"] == UNAUTHENTICATED
        assert error["message"] == f"{refusal} (missing access token: send the header `authorization: Bearer <token>`)"


def test_health_reports_serving(processes):
    for address in (processes.auth, processes.kv):
        assert grpcurl_ok(address, "grpc.health.v1.Health/Check") == {"status": "SERVING"}
