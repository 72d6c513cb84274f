"""Local surfaces are owner-only: Tarantool's work dir, snapshots, WAL and console socket,
and the services' worker sockets — created so under a permissive umask, brought in line
when an older data dir was not, refused when they belong to another user."""

import os
import stat
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.stack import ROOT, Stack, kv_svc, tarantool

NOBODY = 65534


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@contextmanager
def permissive_umask():
    """The processes started inside inherit umask 022 (files 0644, directories 0755)."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def test_tarantools_files_are_owner_only_even_under_a_permissive_umask(tmp_path):
    stack = Stack(tmp_path / "fresh")
    with permissive_umask():
        process = tarantool(stack).start()
    try:
        stack.console("box.snapshot()")
        work_dir = stack.data_dir / "tarantool"
        assert mode(work_dir) == 0o700
        files = sorted(work_dir.iterdir())
        assert {path.suffix for path in files} >= {".snap", ".xlog"}
        assert {path.name: mode(path) for path in files} == {path.name: 0o600 for path in files}
        assert mode(stack.console_socket) == 0o600
    finally:
        process.stop()


def test_an_older_permissive_data_dir_is_made_owner_only_at_start(tmp_path):
    stack = Stack(tmp_path / "older")
    process = tarantool(stack).start()
    process.stop()
    work_dir = stack.data_dir / "tarantool"
    work_dir.chmod(0o755)
    for path in work_dir.iterdir():
        path.chmod(0o644)
    process = tarantool(stack).start()
    try:
        assert mode(work_dir) == 0o700
        assert {mode(path) for path in work_dir.iterdir()} == {0o600}
        assert "made owner-only" in process.log()
    finally:
        process.stop()


def foreign_dir(path: Path) -> Path:
    """An owner-only directory that belongs to another user (as root, which CI is)."""
    assert os.getuid() == 0, "this test hands a directory to another user: it runs as root, as CI does"
    path.mkdir(mode=0o700)
    os.chown(path, NOBODY, NOBODY)
    return path


@pytest.mark.log_errors_expected("refusing to use it")
def test_tarantool_refuses_a_work_dir_of_another_user(tmp_path):
    stack = Stack(tmp_path / "foreign")
    foreign_dir(stack.data_dir / "tarantool")
    process = tarantool(stack)
    with pytest.raises(RuntimeError, match="exited"):
        process.start()
    assert f"belongs to uid {NOBODY}, not to this user" in process.log()


def test_the_worker_socket_dir_and_sockets_are_owner_only(tmp_path):
    stack = Stack(tmp_path / "sockets")
    sockets = stack.data_dir / "run"
    with permissive_umask():
        sockets.mkdir(mode=0o755)  # as an older version, or a person, left it
        db = tarantool(stack).start()
        kv = kv_svc(stack).start()
    try:
        assert mode(sockets) == 0o700
        [socket] = sockets.iterdir()
        assert stat.S_ISSOCK(socket.stat().st_mode) and mode(socket) == 0o600
    finally:
        kv.stop()
        db.stop()


def test_a_service_refuses_a_worker_socket_dir_of_another_user(tmp_path):
    stack = Stack(tmp_path / "foreign-sockets")
    sockets = foreign_dir(stack.data_dir / "run")
    result = subprocess.run(
        [sys.executable, "-m", "kv_svc"], cwd=ROOT, env=stack.env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert f"kv_svc: configuration error: {sockets} belongs to uid {NOBODY}, not to this user" in result.stderr
