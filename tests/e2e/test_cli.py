"""The `tkv` command line through its real entry point, as a user types it (issue 14):
each command's output and exit code, the saved token's file mode, and an import of 20,000
pairs interrupted and resumed, with a progress bar on a terminal and none when piped."""

from __future__ import annotations

import json
import os
import pty
import signal
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.stack import Stack, start_all, stop_all, tarantool

TKV = str(Path(sys.executable).parent / "tkv")
PASSWORD = "Secr3t!pass"


@pytest.fixture
def tkv(processes, tmp_path):
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"), "TKV_SERVER": processes.gateway}

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([TKV, *args], input=stdin, capture_output=True, text=True, env=env, timeout=120)

    run.env = env
    run.config = tmp_path / "config"
    return run


def sign_up(tkv) -> str:
    login = "cli" + uuid.uuid4().hex[:10]
    assert (
        tkv(
            "register", login, "--name", "Anna", "--surname", "Smith", "--password-stdin", stdin=PASSWORD + "\n"
        ).returncode
        == 0
    )
    result = tkv("login", login, "--password-stdin", stdin=PASSWORD + "\n")
    assert result.returncode == 0 and result.stdout == f"signed in as {login}\n", result.stderr
    return login


def test_a_session_with_every_command_and_its_exit_codes(tkv):
    assert tkv("get", "x").returncode == 4  # not signed in yet
    login = sign_up(tkv)
    session = tkv.config / "tkv" / "session.json"
    assert stat.S_IMODE(session.stat().st_mode) == 0o600 and stat.S_IMODE(session.parent.stat().st_mode) == 0o700
    assert tkv("put", "app/color", '"blue"').stdout.strip().isdigit()
    assert tkv("put", "app/size", "42", "--ttl", "3600").returncode == 0
    got = tkv("--output", "json", "get", "app/color", "app/size")
    assert got.returncode == 0 and json.loads(got.stdout) == {"app/color": "blue", "app/size": 42}
    assert tkv("get", "app/color").stdout == 'app/color\t"blue"\n'
    assert tkv("ls", "app/").stdout == "app/color\napp/size\n"
    long = [json.loads(line) for line in tkv("-o", "json", "ls", "--long").stdout.splitlines()]
    assert [(p["key"], p["owner"], p["expire_time"] is None) for p in long] == [
        ("app/color", login, True),
        ("app/size", login, False),
    ]
    absent = tkv("get", "app/color", "app/none")
    assert absent.returncode == 3 and absent.stdout == 'app/color\t"blue"\n' and "app/none" in absent.stderr
    lost = tkv("put", "app/color", '"red"', "--if-version", str(long[0]["version"] + 1000))
    assert lost.returncode == 6 and "VERSION_MISMATCH" in lost.stderr
    assert tkv("put", "bad", "not json").returncode == 2
    assert tkv("-n", "someoneelse1", "get", "x").returncode == 5
    assert tkv("rm", "app/color", "app/none").returncode == 3
    assert tkv("ls").stdout == "app/size\n"
    assert tkv("logout").returncode == 0
    assert tkv("get", "app/size").returncode == 4


def test_import_interrupted_resumes_and_export_gives_it_back(tkv, tmp_path):
    sign_up(tkv)
    source = tmp_path / "pairs.jsonl"
    pairs = [{"key": f"bulk/{i:05}", "value": {"i": i, "tags": ["x", i % 7]}} for i in range(20_000)]
    source.write_text("".join(json.dumps(p) + "\n" for p in pairs))
    checkpoint = tmp_path / "pairs.jsonl.progress"
    # Interrupted once a few batches are in: the checkpoint says how many lines are done.
    first = subprocess.Popen([TKV, "import", str(source), "--batch", "500"], env=tkv.env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 60
    while not (checkpoint.exists() and checkpoint.read_text() and int(checkpoint.read_text()) >= 2000):
        assert time.monotonic() < deadline and first.poll() is None, "the import ended before it was interrupted"
        time.sleep(0.01)
    first.send_signal(signal.SIGKILL)
    first.wait()
    done = int(checkpoint.read_text())
    assert 2000 <= done < 20_000
    resumed = tkv("import", str(source), "--batch", "500")
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stderr == f"imported {20_000 - done} pairs ({done} were done before)\n"  # piped: no progress bar
    assert not checkpoint.exists()
    exported = tkv("export", "bulk/")
    assert [json.loads(line) for line in exported.stdout.splitlines()] == pairs


def test_import_shows_progress_on_a_terminal(tkv, tmp_path):
    sign_up(tkv)
    source = tmp_path / "few.jsonl"
    source.write_text("".join(json.dumps({"key": f"few/{i}", "value": i}) + "\n" for i in range(3000)))
    leader, follower = pty.openpty()
    process = subprocess.Popen([TKV, "import", str(source), "--batch", "100"], env=tkv.env,
                               stdout=subprocess.PIPE, stderr=follower)  # fmt: skip
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    assert process.wait(60) == 0
    os.close(leader)
    text = shown.decode(errors="replace")
    assert "importing few.jsonl" in text and "imported 3000 pairs" in text, text[-2000:]


def test_without_password_stdin_the_password_is_asked_for(tkv):
    # The README's quick start: register asks twice, login once (here fed on stdin).
    login = "ask" + uuid.uuid4().hex[:10]
    registered = tkv("register", login, "--name", "Bob", "--surname", "Brown", stdin=f"{PASSWORD}\n{PASSWORD}\n")
    assert registered.returncode == 0 and "successfully registered" in registered.stdout, registered.stderr
    assert tkv("login", login, stdin=f"{PASSWORD}\n").returncode == 0
    assert tkv("put", "greeting", '"hello"').returncode == 0
    assert tkv("get", "greeting").stdout == 'greeting\t"hello"\n'


def test_watch_prints_each_change_as_a_json_line_until_interrupted(tkv):
    sign_up(tkv)
    start = int(tkv("put", "seed", "0").stdout)  # the watch starts after it: nothing is missed
    # Ctrl-C as on a terminal: a runner started in the background by a shell (`make test &`)
    # passes SIGINT on ignored, and Python then never raises KeyboardInterrupt.
    watch = subprocess.Popen([TKV, "watch", "live/", "--start-revision", str(start)], env=tkv.env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    try:
        revision = int(tkv("put", "live/a", '{"on": true}').stdout)
        event = json.loads(watch.stdout.readline())
        assert (event["type"], event["key"], event["value"], event["version"]) == (
            "PUT",
            "live/a",
            {"on": True},
            revision,
        )
        assert tkv("rm", "live/a").returncode == 0
        assert json.loads(watch.stdout.readline())["type"] == "DELETE"
    finally:
        watch.send_signal(signal.SIGINT)
    assert watch.wait(10) == 0


@pytest.fixture(scope="module")
def small_quota(tmp_path_factory):
    """A stack of its own where a user may hold one pair: the quota is the limit that is
    cheapest to reach."""
    stack = Stack(tmp_path_factory.mktemp("cli-quota"), extra_env={"TKV_KV_QUOTA_PAIRS": "1"})
    running = start_all(stack)
    yield stack, running
    stop_all(running)


def test_the_exit_codes_for_a_limit_an_outage_and_other_errors(small_quota, tmp_path):
    stack, running = small_quota
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"), "TKV_SERVER": f"127.0.0.1:{stack.gateway_port}"}

    def tkv(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([TKV, *args], input=stdin, capture_output=True, text=True, env=env, timeout=120)

    sign_up(tkv)
    assert tkv("put", "first", "1").returncode == 0
    over = tkv("put", "second", "2")  # the quota of one pair is used up
    assert over.returncode == 7 and "QUOTA_EXCEEDED" in over.stderr, over.stderr
    too_long = tkv("put", "k" * 2000, "1")  # INVALID_ARGUMENT has no code of its own: "other errors"
    assert too_long.returncode == 1 and "key" in too_long.stderr.lower(), too_long.stderr
    running["tarantool"].stop(signal.SIGKILL)  # the store gone: retried, then "unavailable"
    try:
        down = tkv("put", "third", "3")
        assert down.returncode == 8, down.stderr
    finally:
        running["tarantool"] = tarantool(stack).start()


def cli_for(gateway: str, config: Path):
    env = {**os.environ, "XDG_CONFIG_HOME": str(config), "TKV_SERVER": gateway}

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([TKV, *args], input=stdin, capture_output=True, text=True, env=env, timeout=120)

    return run


def json_of(result: subprocess.CompletedProcess):
    """The JSON a command printed; a test failure (not an error) when it printed none."""
    try:
        return json.loads(result.stdout)
    except ValueError:
        pytest.fail(f"not JSON: {result.stdout!r} (stderr {result.stderr!r})")


def test_sharing_and_account_commands_with_global_options_after_the_command(tkv, processes, tmp_path):
    owner = sign_up(tkv)
    bob_cli = cli_for(processes.gateway, tmp_path / "bob")
    bob = sign_up(bob_cli)
    assert tkv("put", "config/color", '"blue"').returncode == 0
    assert tkv("put", "private", "1").returncode == 0

    given = tkv("grant", bob, "--role", "reader", "--prefix", "config/", "-o", "json")
    assert given.returncode == 0, given.stderr
    assert {k: v for k, v in json_of(given).items() if k != "create_time"} == {
        "namespace": owner.lower(), "grantee": bob.lower(), "prefix": "config/", "role": "reader"
    }  # fmt: skip
    listed = tkv("grants")
    assert listed.returncode == 0 and listed.stdout.split("\t")[:4] == [owner.lower(), bob.lower(), "config/", "reader"]
    received = bob_cli("grants", "--received", "-o", "json")
    assert received.returncode == 0 and json_of(received)["namespace"] == owner.lower()

    # Global options after the command, as before it.
    assert bob_cli("get", "config/color", "-n", owner, "-o", "json").stdout == '{"config/color": "blue"}\n'
    assert bob_cli("-n", owner, "-o", "json", "get", "config/color").stdout == '{"config/color": "blue"}\n'
    assert bob_cli("get", "private", "-n", owner).returncode == 5  # outside the prefix
    assert bob_cli("put", "config/color", '"red"', "-n", owner).returncode == 5  # a reader

    assert tkv("revoke", bob, "--prefix", "config/").returncode == 0
    assert tkv("revoke", bob, "--prefix", "config/").returncode == 3  # no such grant any more
    assert bob_cli("get", "config/color", "-n", owner).returncode == 5

    # The account: a new password (this session renewed, the others signed out), log out
    # everywhere, delete.
    changed = bob_cli("passwd", "--password-stdin", stdin=f"{PASSWORD}\nN3w-{PASSWORD}\n")
    assert changed.returncode == 0, changed.stderr
    assert bob_cli("ls").returncode == 0
    assert bob_cli("logout", "--everywhere").returncode == 0
    assert bob_cli("ls").returncode == 4
    assert bob_cli("login", bob, "--password-stdin", stdin=f"N3w-{PASSWORD}\n").returncode == 0
    wrong = bob_cli("account", "delete", "--password-stdin", stdin="wrong\n")
    assert wrong.returncode == 5, wrong.stderr  # WRONG_PASSWORD: permission denied, nothing deleted
    deleted = bob_cli("account", "delete", "--password-stdin", stdin=f"N3w-{PASSWORD}\n")
    assert deleted.returncode == 0 and deleted.stdout == "account deleted\n", deleted.stderr
    gone = bob_cli("login", bob, "--password-stdin", stdin=f"N3w-{PASSWORD}\n")
    assert gone.returncode == 4 and "INVALID_CREDENTIALS" in gone.stderr, gone.stderr  # as for any wrong login
