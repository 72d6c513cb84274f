"""The test harness itself: what the process-based tiers inherit from the runner."""

from tests.stack import _EPHEMERAL, Stack, free_port


def test_a_variable_in_the_runners_shell_does_not_reach_the_test_processes(tmp_path, monkeypatch):
    monkeypatch.setenv("TKV_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("TKV_WORKERS", "7")
    monkeypatch.setenv("TKV_TARANTOOL_CALL_TIMEOUT", "60")
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    env = Stack(tmp_path / "stack").env
    assert "TKV_LOG_LEVEL" not in env and "TKV_TARANTOOL_CALL_TIMEOUT" not in env
    assert env["TKV_WORKERS"] == "1"  # the harness's own value, not the shell's
    assert env["PATH"] == "/usr/bin:/bin"
    # Only the harness's TKV_* settings and a few inherited basics.
    assert {name for name in env if not name.startswith("TKV_")} <= {
        "PATH",
        "HOME",
        "LANG",
        "LC_ALL",
        "LC_CTYPE",
        "TMPDIR",
        "TZ",
    }


def test_free_ports_are_outside_the_ephemeral_range_and_never_given_twice():
    # A port from the ephemeral range can be taken by any outgoing connection before the
    # process that was given it binds it; and a stack asks for several before binding any.
    ports = [free_port() for _ in range(1000)]
    assert len(set(ports)) == len(ports)
    assert not any(port in _EPHEMERAL for port in ports), sorted(p for p in ports if p in _EPHEMERAL)
