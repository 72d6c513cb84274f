"""tkv_client against the real stack through the gateway: every call, chunking past the
server's limits, tokens, and every error type (issue 14)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import grpc
import jwt
import pytest

import tkv_client
from tests.tokens_for_tests import sign
from tkv_client import AsyncClient, Client

PASSWORD = "Secr3t!pass"


def new_login() -> str:
    return "c" + uuid.uuid4().hex[:12]


@pytest.fixture
def client(processes):
    login = new_login()
    with Client(processes.gateway, login=login, password=PASSWORD) as tkv:
        tkv.register(login, PASSWORD, "Anna", "Smith")
        tkv.login_name = login
        yield tkv


def test_every_pair_call_and_chunking_past_the_limits(client):
    revision = client.put("a/1", {"n": 1}, ttl=60)
    pair = client.get("a/1")
    assert (pair.key, pair.value, pair.version, pair.owner) == ("a/1", {"n": 1}, revision, client.login_name)
    assert pair.expire_time is not None
    # 2,500 keys: three chunks each way, merged in request order.
    data = {f"bulk/{i:05}": i for i in range(2500)}
    assert len(client.put_many(data)) == 3
    keys = [*reversed(list(data)), "bulk/absent"]
    found, missing = client.get_many(keys)
    assert [p.key for p in found] == keys[:-1] and missing == ["bulk/absent"]
    listed = list(client.list("bulk/", keys_only=True, page_size=700))
    assert [p.key for p in listed] == sorted(data) and all(p.value is None for p in listed)
    assert client.delete_many([*data, "bulk/absent"]) == ["bulk/absent"]
    assert list(client.list("bulk/")) == []
    # Conditions.
    second = client.put("a/1", 2, if_version=revision)
    with pytest.raises(tkv_client.VersionMismatch) as lost:
        client.put("a/1", 3, if_version=revision)
    assert lost.value.reason == "VERSION_MISMATCH" and lost.value.current_versions == {"a/1": second}
    client.delete("a/1", if_version=second)
    with pytest.raises(tkv_client.NotFound) as absent:
        client.get("a/1")
    assert absent.value.reason == "KEYS_NOT_FOUND" and absent.value.code == grpc.StatusCode.NOT_FOUND


def test_the_original_api_and_its_chunks(client):
    data = {f"v1-{uuid.uuid4().hex[:6]}-{i}": {"i": i} for i in range(1500)}
    assert client.write(data) == []
    # Insert only: existing keys are skipped (in the order a protobuf map sends them).
    assert sorted(client.write(dict(list(data.items())[:3]))) == sorted(list(data)[:3])
    first = next(iter(data))
    read = client.read(list(data)[::-1])
    assert list(read) == list(data)[::-1] and read[first] == {"i": 0}


def test_every_error_type_the_server_sends(client, processes):
    with pytest.raises(tkv_client.InvalidArgument) as invalid:
        client.put("", 1)
    assert invalid.value.reason == "INVALID_PAIRS" and invalid.value.violations[0].field == "key"
    with pytest.raises(tkv_client.PermissionDenied) as denied:
        client.get("x", namespace=new_login())
    assert denied.value.reason == "NAMESPACE_DENIED"
    with pytest.raises(tkv_client.NotFound) as unknown:
        client.grant(new_login(), "READER")
    assert unknown.value.reason == "USER_NOT_FOUND"
    # 16 watches per user: the 17th is refused. (A watch opens at its first next(): each
    # starts before a put it then sees.)
    watches = []
    for i in range(16):
        revision = client.put(f"w{i}/x", 1)
        watches.append(client.watch(f"w{i}/", start_revision=revision - 1))
        assert next(watches[-1]).pair.version == revision
    with pytest.raises(tkv_client.ResourceExhausted) as too_many:
        next(client.watch("w16/"))
    assert too_many.value.reason == "TOO_MANY_WATCHES"
    assert too_many.value.metadata == {"limit": "16", "request_id": too_many.value.metadata["request_id"]}
    for watch in watches:
        watch.close()


def test_tokens_from_credentials_or_given(processes):
    login = new_login()
    with Client(processes.gateway, login=login, password=PASSWORD) as tkv:
        tkv.register(login, PASSWORD, "Anna", "Smith")
        tkv.put("k", 1)  # logs in on first use
        first = tkv.token
        # A token about to expire is replaced before the call, not refused by it.
        claims = jwt.decode(first, options={"verify_signature": False})
        tkv._client._token = sign(processes.stack.data_dir, **{**claims, "exp": int(time.time()) + 5})
        assert tkv.get("k").value == 1
        assert tkv.token not in (first, None) and jwt.decode(tkv.token, options={"verify_signature": False})["exp"] > (
            time.time() + 600
        )
        given = tkv.token
        tkv.log_out()
    # A given token: used as it is, never renewed.
    with Client(processes.gateway, token=given) as revoked, pytest.raises(tkv_client.Unauthenticated) as refused:
        revoked.get("k")
    assert refused.value.reason == "TOKEN_REVOKED"
    expired = sign(processes.stack.data_dir, **{**claims, "exp": int(time.time()) - 1})
    with Client(processes.gateway, token=expired) as stale, pytest.raises(tkv_client.TokenExpired):
        stale.get("k")
    with Client(processes.gateway) as anonymous, pytest.raises(tkv_client.Unauthenticated):
        anonymous.get("k")


async def test_the_asyncio_client_watches_and_resumes(processes):
    login = new_login()
    async with AsyncClient(processes.gateway, login=login, password=PASSWORD) as tkv:
        await tkv.register(login, PASSWORD, "Anna", "Smith")
        start = await tkv.put("seed", 0)
        revisions = [await tkv.put(f"p/{i}", i) for i in range(3)]
        events = tkv.watch("p/", start_revision=start)
        got = [await anext(events) for _ in range(3)]
        assert [(e.type, e.pair.key, e.pair.version) for e in got] == [
            ("PUT", f"p/{i}", revisions[i]) for i in range(3)
        ]
        await events.aclose()


def test_account_and_sharing_calls(processes):
    owner, reader = new_login(), new_login()
    with (
        Client(processes.gateway, login=owner, password=PASSWORD) as alice,
        Client(processes.gateway, login=reader, password=PASSWORD) as bob,
    ):
        alice.register(owner, PASSWORD, "Anna", "Smith")
        bob.register(reader, PASSWORD, "Bob", "Brown")
        alice.put("shared/x", "for bob")
        alice.grant(reader, "READER", prefix="shared/")
        assert bob.get("shared/x", namespace=owner).value == "for bob"
        alice.revoke(reader, prefix="shared/")
        with pytest.raises(tkv_client.PermissionDenied):
            bob.get("shared/x", namespace=owner)
        # A new password: the client keeps working with it (it logs in again itself).
        alice.change_password(PASSWORD, "N3w-Secret!")
        assert alice.get("shared/x").value == "for bob"
        alice.log_out_everywhere()
        assert alice.get("shared/x").value == "for bob"  # logged in again, a new epoch
        alice.delete_account("N3w-Secret!")
        with pytest.raises(tkv_client.Unauthenticated):
            alice.get("shared/x")  # the account is gone: its login no longer works


def test_shell_completion_is_generated(processes):
    env = {**os.environ, "_TKV_COMPLETE": "bash_source"}
    result = subprocess.run([str(Path(sys.executable).parent / "tkv")], env=env, capture_output=True, text=True)
    assert result.returncode == 0 and "_tkv_completion" in result.stdout
