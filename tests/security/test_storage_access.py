"""Tarantool access: loopback by default, one least-privileged user per service."""

import asyncio
import gc
import os
import shutil
import stat
import subprocess
import time
from pathlib import Path

import asynctnt
import pytest
from asynctnt.exceptions import TarantoolDatabaseError

from tests.stack import ROOT, Process, Stack, require_binary, tarantool

SERVICE_USERS = ("tkv_auth", "tkv_kv")


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


def names_in(stack, lua_list: str) -> list[str]:
    """The strings of a Lua list expression, one console call each (the console folds long
    answers over several lines)."""
    count = int(stack.console(f"#({lua_list})"))
    return [stack.console(f"({lua_list})[{i}]") for i in range(1, count + 1)]


def schema_of(stack) -> tuple[dict[str, int], list[str]]:
    """Every space of ours (name -> id) and every stored function, as the admin sees them now:
    the probes below cover what exists, not a list that a migration can make stale."""
    spaces = names_in(
        stack,
        "(function() local t = {} for _, s in box.space._space:pairs(512, {iterator = 'GE'}) do "
        "table.insert(t, s.name .. '=' .. s.id) end return t end)()",
    )
    functions = names_in(
        stack,
        "(function() local t = {} for _, f in box.space._func:pairs() do "
        "if f.name:find('^tkv%.') then table.insert(t, f.name) end end return t end)()",
    )
    return dict(item.split("=") for item in spaces), functions


# Who may call each function tarantool/tkv/api.lua exports: the rule tarantool/tkv/rights.lua
# applies at every start, stated here again so that a change to it is made twice, knowingly.
PREFIXES = {"tkv.auth_": {"tkv_auth"}, "tkv.kv_": {"tkv_kv"}}
UNPREFIXED = {"tkv.node_status": {"tkv_auth", "tkv_kv"}, "tkv.storage_stats": {"tkv_kv"}}


def callers(function: str) -> set[str]:
    for prefix, users in PREFIXES.items():
        if function.startswith(prefix):
            return users
    assert function in UNPREFIXED, f"{function}: who may call it? (tarantool/tkv/rights.lua, and here)"
    return UNPREFIXED[function]


def exports_of(stack) -> set[str]:
    """The stored functions tarantool/tkv/api.lua exports, as the running Tarantool has them."""
    return set(
        names_in(
            stack,
            "(function() local t = {} for name, f in pairs(tkv) do "
            "if type(f) == 'function' then table.insert(t, 'tkv.' .. name) end end return t end)()",
        )
    )


def execute_grants(stack) -> dict[str, set[str]]:
    """Who holds execute (bit 4) on each `tkv.*` function, users and roles alike."""
    pairs = names_in(
        stack,
        "(function() local t = {} for _, p in box.space._priv:pairs() do "
        "local f = p.object_type == 'function' and type(p.object_id) == 'number' and box.space._func:get(p.object_id) "
        "if f and f.name:find('^tkv%.') and bit.band(p.privilege, 4) ~= 0 then "
        "table.insert(t, f.name .. '=' .. box.space._user:get(p.grantee).name) end end return t end)()",
    )
    grants: dict[str, set[str]] = {}
    for item in pairs:
        function, user = item.split("=")
        grants.setdefault(function, set()).add(user)
    return grants


async def test_each_service_user_may_call_only_its_own_functions(tarantool_stack):
    spaces, functions = schema_of(tarantool_stack)
    # The probes would prove nothing if the schema could not be read or lost its main parts.
    assert {"users", "pairs", "grants", "changes", "revoked_tokens"} <= spaces.keys(), spaces
    assert {"tkv.auth_register", "tkv.kv_put", "tkv.kv_create_grant", "tkv.storage_stats"} <= set(functions)
    conns = {user: await connect(tarantool_stack, user) for user in SERVICE_USERS}
    try:
        for user, conn in conns.items():
            # Every function that is not the user's own is refused by Tarantool itself
            # (arguments that a granted function would reject do not matter: access is checked first).
            foreign = [f for f in functions if user not in callers(f)]
            assert foreign, user
            for function in foreign:
                with pytest.raises(TarantoolDatabaseError, match=f"Execute access to function '{function}' is denied"):
                    await conn.call(function, [])
            # No user may evaluate code or call the spaces' methods...
            with pytest.raises(TarantoolDatabaseError, match="denied"):
                await conn.eval("return box.space.users:select()")
            with pytest.raises(TarantoolDatabaseError, match="denied"):
                await conn.call("box.space.pairs:select", [])
            # ...nor read any space directly: probed by id, so the server itself refuses
            # (by name, the client would fail first, not finding a space it may not see).
            for name, space_id in spaces.items():
                with pytest.raises(TarantoolDatabaseError, match=f"Read access to space '{name}' is denied"):
                    await conn.select(int(space_id))
    finally:
        for conn in conns.values():
            await conn.disconnect()


def test_every_api_export_is_granted_to_its_service_user_and_no_other(tarantool_stack):
    exports = exports_of(tarantool_stack)
    assert {"tkv.auth_register", "tkv.kv_put", "tkv.node_status", "tkv.storage_stats"} <= exports, exports
    _, functions = schema_of(tarantool_stack)
    # Every export is a function Tarantool knows, and nothing else is: none left from a release before.
    assert set(functions) == exports
    grants = execute_grants(tarantool_stack)
    assert {function: grants.get(function, set()) for function in exports} == {
        function: callers(function) for function in exports
    }
    # Each runs with its definer's rights: the reason no service user needs a space.
    not_setuid = names_in(
        tarantool_stack,
        "(function() local t = {} for _, f in box.space._func:pairs() do "
        "if f.name:find('^tkv%.') and f.setuid ~= 1 then table.insert(t, f.name) end end return t end)()",
    )
    assert not_setuid == []
    # Idempotent: applied again with nothing to change, the rule writes nothing.
    lsn = tarantool_stack.console("box.info.lsn")
    tarantool_stack.console(
        "require('tkv.rights').apply(require('tkv.rights').of(tkv), require('tkv.schema').SERVICE_USERS)"
    )
    assert tarantool_stack.console("box.info.lsn") == lsn


def changed_tarantool(tmp_path: Path, lua: str) -> Path:
    """A copy of tarantool/ whose tkv/api.lua ends with `lua` before its `return M`; its init.lua."""
    tree = tmp_path / "changed-tarantool"
    shutil.copytree(ROOT / "tarantool", tree)
    api = tree / "tkv" / "api.lua"
    text = api.read_text()
    assert text.endswith("\nreturn M\n")
    api.write_text(text.removesuffix("return M\n") + lua + "\nreturn M\n")
    return tree / "init.lua"


def once_marks(stack) -> set[str]:
    """The migrations a data dir has run (box.once marks)."""
    return set(
        names_in(
            stack,
            "(function() local t = {} for _, r in box.space._schema:pairs() do "
            "if r[1]:find('^once') then table.insert(t, r[1]) end end return t end)()",
        )
    )


async def test_a_new_export_is_granted_and_a_removed_one_dropped_at_the_next_start_with_no_migration(tmp_path):
    stack = Stack(tmp_path / "data")
    process = tarantool(stack).start()
    try:
        marks = once_marks(stack)
        # A grant no rule gives (an old rule's, or made by hand) goes at the next start too.
        stack.console("box.schema.user.grant('tkv_kv', 'execute', 'function', 'tkv.auth_register')")
        assert execute_grants(stack)["tkv.auth_register"] == {"tkv_auth", "tkv_kv"}
    finally:
        process.stop()
    # The next release adds tkv.kv_probe and no longer exports tkv.kv_watch_position.
    changed = changed_tarantool(tmp_path, "function M.kv_probe() return 'ok', 'probe' end\nM.kv_watch_position = nil\n")
    process = Process("tarantool", [require_binary("tarantool"), str(changed)], stack, stack.tarantool_port).start()
    try:
        grants = execute_grants(stack)
        assert (grants.get("tkv.kv_probe"), grants["tkv.auth_register"]) == ({"tkv_kv"}, {"tkv_auth"})
        assert "tkv.kv_watch_position" not in schema_of(stack)[1]
        assert once_marks(stack) == marks
        kv, auth = await connect(stack, "tkv_kv"), await connect(stack, "tkv_auth")
        try:
            assert list(await kv.call("tkv.kv_probe", [])) == ["ok", "probe"]
            with pytest.raises(TarantoolDatabaseError, match=r"Execute access to function 'tkv\.kv_probe' is denied"):
                await auth.call("tkv.kv_probe", [])
            with pytest.raises(TarantoolDatabaseError):
                await kv.call("tkv.kv_watch_position", [])
        finally:
            await kv.disconnect()
            await auth.disconnect()
    finally:
        process.stop()
    # And back: the release before finds its function again, and the probe gone.
    process = tarantool(stack).start()
    try:
        assert execute_grants(stack)["tkv.kv_watch_position"] == {"tkv_kv"}
        assert "tkv.kv_probe" not in schema_of(stack)[1]
    finally:
        process.stop()


@pytest.mark.log_errors_expected("tkv/api.lua exports helper")
def test_an_export_the_rule_does_not_name_stops_the_start_before_any_file_is_written(tmp_path):
    stack = Stack(tmp_path / "data")
    changed = changed_tarantool(tmp_path, "function M.helper() return 'ok' end\n")
    process = Process("tarantool", [require_binary("tarantool"), str(changed)], stack, stack.tarantool_port)
    try:
        with pytest.raises(RuntimeError, match="exited"):
            process.start()
    finally:
        process.stop()  # a start that went on (a mutant's) must not outlive the test
    assert "tkv/api.lua exports helper: name it auth_* or kv_*" in process.log()
    assert not list(stack.data_dir.glob("tarantool/*.snap"))


@pytest.mark.log_errors_expected("Authorization failed: Incorrect password")
async def test_a_wrong_password_cannot_connect(tarantool_stack):
    conn = asynctnt.Connection(
        host="127.0.0.1", port=tarantool_stack.tarantool_port, username="tkv_kv", password="guess", reconnect_timeout=0
    )
    with pytest.raises(TarantoolDatabaseError, match=r"[Ii]ncorrect password|User not found|denied"):
        await conn.connect()


# asynctnt leaves the refused connect's future unretrieved; asyncio logs it.
@pytest.mark.log_errors_expected("denied for user 'guest'", "Future exception was never retrieved")
async def test_guest_can_do_nothing_not_even_read_the_system_views(tarantool_stack):
    # Its session and usage rights are revoked (migration v4): the first request of an
    # unauthenticated connection, asynctnt's own schema fetch from the system views, fails.
    conn = asynctnt.Connection(host="127.0.0.1", port=tarantool_stack.tarantool_port, reconnect_timeout=0)
    with pytest.raises(TarantoolDatabaseError, match="Usage access to universe '' is denied for user 'guest'"):
        await conn.connect()
    await conn.disconnect()
    del conn
    gc.collect()  # asyncio logs the unretrieved future when it is collected: here, not in the next test


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


def tcp_listen_ports(pid: int) -> set[int]:
    """The TCP ports a process listens on, from /proc: its socket inodes matched against
    the kernel's table of listening sockets (state 0A)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except FileNotFoundError:
            continue  # closed since the directory was listed
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def test_the_admin_console_is_opt_in_and_a_unix_socket_only(tmp_path):
    with_console = Stack(tmp_path / "with")
    without = Stack(tmp_path / "without", extra_env={"TKV_TARANTOOL_CONSOLE_SOCKET": ""})
    for stack in (with_console, without):
        process = tarantool(stack).start()
        try:
            # Tarantool's only TCP listener is the IPROTO port: no console on TCP.
            assert tcp_listen_ports(process.popen.pid) == {stack.tarantool_port}
            if stack is with_console:
                assert stat.S_ISSOCK(stack.console_socket.stat().st_mode)
                assert stack.console("1 + 1") == "2"
            else:
                assert not stack.console_socket.exists()
        finally:
            process.stop()


async def test_the_listener_opens_only_once_the_schema_and_functions_exist(tmp_path):
    stack = Stack(tmp_path / "fresh")
    process = tarantool(stack).start(wait=False)
    try:
        # Connect at the first moment the port accepts: the stored functions must be there
        # already (a call gets an answer, never "procedure is not defined" or "not found").
        conn = None
        deadline = time.monotonic() + 20
        while conn is None:
            try:
                conn = await connect(stack, "tkv_kv")
            except (OSError, asynctnt.exceptions.TarantoolNotConnectedError, ConnectionError):
                assert time.monotonic() < deadline, "Tarantool never listened"
                await asyncio.sleep(0.002)
            except TarantoolDatabaseError as error:  # e.g. "Instance bootstrap hasn't finished yet"
                pytest.fail(f"the listener took a connection before Tarantool was ready for it: {error}")
        try:
            token = ["no-such-jti", "nobody", "no-account", 0]
            assert (await conn.call("tkv.kv_read", [*token, ["k"], 1024]))[0] == "no_user"
        finally:
            await conn.disconnect()
    finally:
        process.stop()


@pytest.mark.log_errors_expected("tkv_replicator", "Future exception was never retrieved")
async def test_the_replication_user_exists_only_where_replication_is_configured(tmp_path):
    alone = Stack(tmp_path / "alone")
    serving = Stack(tmp_path / "serving", extra_env={"TKV_TARANTOOL_SERVE_REPLICAS": "true"})
    for stack, exists in ((alone, "false"), (serving, "true")):
        process = tarantool(stack).start()
        try:
            assert stack.console("box.schema.user.exists('tkv_replicator')") == exists
        finally:
            process.stop()
    # An instance that served replicas once, started without the setting, drops the user.
    restarted = Stack(serving.data_dir)
    process = tarantool(restarted).start()
    try:
        assert restarted.console("box.schema.user.exists('tkv_replicator')") == "false"
        with pytest.raises(TarantoolDatabaseError):
            await connect(restarted, "tkv_replicator")
        gc.collect()
    finally:
        process.stop()
