"""The backup procedure of docs/operations.md: copy the snapshot and WAL files, start
Tarantool on the copy."""

import shutil

import pytest

from tests.stack import Stack, tarantool

pytestmark = pytest.mark.slow


def test_a_copy_of_the_snapshot_and_wal_files_restores_every_pair(tmp_path):
    source = Stack(tmp_path / "source")
    process = tarantool(source).start()
    try:
        source.console("for i = 1, 100 do box.space.kv:insert({'before-' .. i, 'v'}) end")
        source.console("box.snapshot()")
        # Written after the snapshot: only in the WAL, which the copy takes along.
        source.console("for i = 1, 50 do box.space.kv:insert({'after-' .. i, 'v'}) end")
        restored = Stack(tmp_path / "restored")
        shutil.copytree(source.data_dir / "secrets", restored.data_dir / "secrets", dirs_exist_ok=True)
        shutil.copytree(source.data_dir / "tarantool", restored.data_dir / "tarantool")
    finally:
        process.stop()
    copy = tarantool(restored).start()
    try:
        assert restored.console("box.space.kv:len()") == "150"
        assert restored.console("box.space.kv:get('after-50') ~= nil") == "true"
    finally:
        copy.stop()
