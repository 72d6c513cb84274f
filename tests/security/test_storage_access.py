"""Tarantool access: loopback by default, one least-privileged user per service."""

import subprocess

import asynctnt
import pytest
from asynctnt.exceptions import TarantoolDatabaseError

from tests.stack import ROOT, require_binary


def test_tarantool_listens_on_loopback_by_default():
    probe = "package.path = 'tarantool/?.lua;' .. package.path; print(require('tkv.config').from_env().listen)"
    result = subprocess.run(
        [require_binary("tarantool"), "-e", probe],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.stdout.strip() == "127.0.0.1:3301"


async def connect(stack, user):
    password = (stack.data_dir / "secrets" / f"tarantool-{user}.password").read_text().strip()
    conn = asynctnt.Connection(
        host="127.0.0.1", port=stack.tarantool_port, username=user, password=password, reconnect_timeout=0
    )
    await conn.connect()
    return conn


async def test_each_service_user_may_call_only_its_own_functions(tarantool_stack):
    kv_conn, auth_conn = await connect(tarantool_stack, "tkv_kv"), await connect(tarantool_stack, "tkv_auth")
    try:
        denied = [
            # kv_svc's user cannot reach accounts or password hashes in any way...
            kv_conn.call("tkv.auth_login_check", ["anyone", 0]),
            kv_conn.call("tkv.auth_register", ["x", "y", "z", "w"]),
            kv_conn.eval("return box.space.users:select()"),
            kv_conn.call("box.space.users:select", []),
            # ...nor auth_svc's user the pairs.
            auth_conn.call("tkv.kv_read", ["jti", "sub", ["k"]]),
            auth_conn.eval("return box.space.kv:select()"),
        ]
        for attempt in denied:
            with pytest.raises(TarantoolDatabaseError, match="denied"):
                await attempt
        # Spaces are invisible to both users: no grants on them at all.
        for conn, space in ((kv_conn, "users"), (kv_conn, "login_attempts"), (auth_conn, "kv")):
            with pytest.raises(Exception, match="not found"):
                await conn.select(space)
    finally:
        await kv_conn.disconnect()
        await auth_conn.disconnect()


@pytest.mark.log_errors_expected("Authorization failed: Incorrect password")
async def test_a_wrong_password_cannot_connect(tarantool_stack):
    conn = asynctnt.Connection(
        host="127.0.0.1", port=tarantool_stack.tarantool_port, username="tkv_kv", password="guess", reconnect_timeout=0
    )
    with pytest.raises(TarantoolDatabaseError, match=r"[Ii]ncorrect password|User not found|denied"):
        await conn.connect()


async def test_guest_has_no_access(tarantool_stack):
    conn = asynctnt.Connection(host="127.0.0.1", port=tarantool_stack.tarantool_port, reconnect_timeout=0)
    await conn.connect()
    try:
        for attempt in (conn.call("tkv.kv_read", ["j", "s", ["k"]]), conn.eval("return 1")):
            with pytest.raises(TarantoolDatabaseError, match="denied"):
                await attempt
    finally:
        await conn.disconnect()


def test_envoy_admin_listens_on_loopback_by_default(tmp_path):
    import sys

    rendered = subprocess.run(
        [sys.executable, "scripts/render_envoy.py", str(tmp_path)],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "TKV_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert rendered.returncode == 0, rendered.stderr
    import yaml

    config = yaml.safe_load((tmp_path / "envoy.yaml").read_text())
    assert config["admin"]["address"]["socket_address"]["address"] == "127.0.0.1"
    assert config["static_resources"]["listeners"][0]["address"]["socket_address"]["address"] == "127.0.0.1"
