"""No password, token, hash or stored value in any log line or error message; no key
material in the repository."""

import json
import re
import subprocess
import uuid

import pytest

from tests.e2e.http_client import Stream, call
from tests.stack import ROOT, Stack, start_all, stop_all

PASSWORD = "Sup3r$ecret-" + uuid.uuid4().hex[:8]
WRONG_PASSWORD = "Wr0ng$ecret-" + uuid.uuid4().hex[:8]
NEW_PASSWORD = "N3w$ecret-" + uuid.uuid4().hex[:8]
VALUE_MARKER = "value-marker-" + uuid.uuid4().hex


def v2_flows(gateway: str, login: str, token: str, replies: list) -> list[str]:
    """Pairs, a watch, grants and every account call through the gateway, with wrong
    passwords where a call takes one; returns the tokens it was given."""

    def record(reply, status: int):
        replies.append(reply)
        assert reply.status == status, (reply.status, reply.raw)  # each flow really ran
        return reply

    pair = "/v2/namespaces/me/pairs/app%2Fk"
    with Stream(gateway, "/v2/namespaces/me/pairs:watch", {"prefix": "app/"}, token) as watch:
        assert watch.status == 200 and "revision" in watch.next_message()
        record(call(gateway, "PUT", pair, {"marker": VALUE_MARKER}, token=token), 200)
        assert VALUE_MARKER in json.dumps(watch.next_message())  # the value went through the watch
    record(call(gateway, "GET", pair, token=token), 200)
    record(call(gateway, "GET", "/v2/namespaces/me/pairs?prefix=app/", token=token), 200)
    record(call(gateway, "POST", "/v2/namespaces/me/pairs:batchGet", {"keys": ["app/k", "x"]}, token=token), 200)
    grantee = f"Grantee{uuid.uuid4().hex[:8]}"
    user = {"login": grantee, "password": PASSWORD, "name": "Bob", "surname": "Brown"}
    record(call(gateway, "POST", "/api/register/", user), 201)
    grantee_token = record(call(gateway, "POST", "/api/login/", {"login": grantee, "password": PASSWORD}), 201)
    grantee_token = grantee_token.body["token"]
    grant = {"grantee": grantee, "role": "READER", "prefix": "app/"}
    record(call(gateway, "POST", "/v2/namespaces/me/grants", grant, token=token), 200)
    record(call(gateway, "GET", "/v2/namespaces/me/grants", token=token), 200)
    record(call(gateway, "GET", f"/v2/namespaces/{login}/pairs/app%2Fk", token=grantee_token), 200)
    change = {"old_password": WRONG_PASSWORD, "new_password": NEW_PASSWORD}
    record(call(gateway, "POST", "/v2/account:changePassword", change, token=token), 403)
    change = {"old_password": PASSWORD, "new_password": NEW_PASSWORD}
    record(call(gateway, "POST", "/v2/account:changePassword", change, token=token), 200)
    token = record(call(gateway, "POST", "/api/login/", {"login": login, "password": NEW_PASSWORD}), 201)
    token = token.body["token"]
    record(call(gateway, "POST", "/v2/account:logoutAll", {}, token=grantee_token), 200)
    record(call(gateway, "POST", "/v2/account:delete", {"password": WRONG_PASSWORD}, token=token), 403)
    record(call(gateway, "POST", "/v2/account:delete", {"password": NEW_PASSWORD}, token=token), 200)
    return [token, grantee_token]


@pytest.fixture(scope="module")
def exercised_stack(tmp_path_factory):
    """A full stack at DEBUG log level, put through every flow, then stopped."""
    stack = Stack(tmp_path_factory.mktemp("hygiene"), extra_env={"TKV_LOG_LEVEL": "DEBUG"})
    processes = start_all(stack)
    gateway = f"127.0.0.1:{stack.gateway_port}"
    login = f"Hygiene{uuid.uuid4().hex[:8]}"
    replies = []
    try:
        user = {"login": login, "password": PASSWORD, "name": "Anna", "surname": "Smith"}
        replies.append(call(gateway, "POST", "/api/register/", user))
        replies.append(call(gateway, "POST", "/api/register/", {**user, "password": "weak " + PASSWORD[:3]}))
        replies.append(call(gateway, "POST", "/api/login/", {"login": login, "password": WRONG_PASSWORD}))
        login_reply = call(gateway, "POST", "/api/login/", {"login": login, "password": PASSWORD})
        token = login_reply.body["token"]
        replies.append(call(gateway, "POST", "/api/write/", {"data": {"k": VALUE_MARKER}}, token=token))
        replies.append(call(gateway, "POST", "/api/read/", {"keys": ["k"]}, token=token))
        replies.append(call(gateway, "POST", "/api/read/", {"keys": ["k"]}, token=token[:-5] + "AAAAA"))
        replies.append(call(gateway, "GET", "/api/logout/", token=token))
        replies.append(call(gateway, "POST", "/api/read/", {"keys": ["k"]}, token=token))
        login_reply = call(gateway, "POST", "/api/login/", {"login": login, "password": PASSWORD})
        tokens = [token, login_reply.body["token"]]
        tokens += v2_flows(gateway, login, tokens[-1], replies)
        replies.append(call(gateway, "POST", "/api/write/", raw=b'{"data": {"k": "' + VALUE_MARKER.encode() + b'"'))
    finally:
        stop_all(processes)
    logs = {path.name: path.read_text(errors="replace") for path in stack.data_dir.glob("*.log")}
    yield {"logs": logs, "tokens": tokens, "replies": replies, "login": login}


def secrets_of(exercised):
    found = {
        "password": PASSWORD,
        "wrong password": WRONG_PASSWORD,
        "new password": NEW_PASSWORD,
        "argon2 hash": "$argon2id$",
    }
    for number, token in enumerate(exercised["tokens"]):
        found[f"token {number}"] = token
        found[f"token {number}'s signature"] = token.rsplit(".", 1)[1]
    return found


def test_logs_were_captured_from_every_process(exercised_stack):
    assert set(exercised_stack["logs"]) == {"tarantool.log", "auth_svc.log", "kv_svc.log", "envoy.log"}
    # The scan below means something only if the flows were logged at all.
    assert '"msg": "rpc"' in exercised_stack["logs"]["kv_svc.log"]
    assert '"/api/login"' in exercised_stack["logs"]["envoy.log"]
    for method in ("Watch", "PutPair", "CreateGrant", "ChangePassword", "DeleteAccount"):
        assert method in exercised_stack["logs"]["kv_svc.log"] + exercised_stack["logs"]["auth_svc.log"], method


def test_no_secret_or_value_in_any_log_line(exercised_stack):
    for name, text in exercised_stack["logs"].items():
        for what, secret in {**secrets_of(exercised_stack), "stored value": VALUE_MARKER}.items():
            assert secret not in text, f"{what} found in {name}"


def test_no_secret_in_any_error_reply(exercised_stack):
    for reply in exercised_stack["replies"]:
        if reply.status >= 400:
            text = reply.raw.decode()
            for what, secret in secrets_of(exercised_stack).items():
                assert secret not in text, f"{what} in a {reply.status} reply"
            assert "Traceback" not in text


def test_no_key_material_is_tracked_by_git():
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    offenders = []
    for name in filter(None, tracked.decode().split("\0")):
        path = ROOT / name
        if not path.is_file():
            continue
        text = path.read_bytes().decode(errors="replace")
        if re.search(r"-----BEGIN [A-Z ]*(PRIVATE KEY|CERTIFICATE)-----", text) or name.endswith((".pem", ".key")):
            offenders.append(name)
    assert offenders == []


def test_data_and_secret_files_are_git_ignored():
    for path in ("var/keys/signing.pem", "var/secrets/tarantool-tkv_kv.password", ".env"):
        result = subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT)
        assert result.returncode == 0, f"{path} is not ignored"


def test_json_errors_never_echo_the_request_body(exercised_stack):
    malformed = exercised_stack["replies"][-1]
    assert malformed.status == 422
    assert VALUE_MARKER not in json.dumps(malformed.body)
