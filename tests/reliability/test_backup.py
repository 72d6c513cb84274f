"""The backup procedure of docs/operations.md: copy the snapshot and WAL files, start
Tarantool on the copy."""

import asyncio
import json
import shutil
import subprocess
import sys
import time
import uuid

import pytest

from scripts.backup import Console
from tests.reliability.workload import ACKED, Target, new_token, until_acknowledged, writer
from tests.stack import ROOT, Stack, start_all, stop_all, tarantool
from tkv.auth.v1 import auth_pb2, auth_pb2_grpc

pytestmark = pytest.mark.slow


def test_a_copy_of_the_snapshot_and_wal_files_restores_every_pair(tmp_path):
    source = Stack(tmp_path / "source")
    process = tarantool(source).start()
    try:
        pair = "'v', 1, 1, '', 0, 0, 1"  # value, version, create_version, owner, times, size
        source.console(f"for i = 1, 100 do box.space.pairs:insert({{'', 'before-' .. i, {pair}}}) end")
        source.console("box.snapshot()")
        # Written after the snapshot: only in the WAL, which the copy takes along.
        source.console(f"for i = 1, 50 do box.space.pairs:insert({{'', 'after-' .. i, {pair}}}) end")
        restored = Stack(tmp_path / "restored")
        shutil.copytree(source.data_dir / "secrets", restored.data_dir / "secrets", dirs_exist_ok=True)
        shutil.copytree(source.data_dir / "tarantool", restored.data_dir / "tarantool")
    finally:
        process.stop()
    copy = tarantool(restored).start()
    try:
        assert restored.console("box.space.pairs:len()") == "150"
        assert restored.console("box.space.pairs:get({'', 'after-50'}) ~= nil") == "true"
    finally:
        copy.stop()


async def test_the_backup_command_under_load_restores_exactly_what_was_acknowledged_before_it(tmp_path, report):
    stack = Stack(tmp_path / "live")
    processes = start_all(stack)
    backup = tmp_path / "backup"
    try:
        target = Target.of(stack)
        token = await new_token(target)
        logged_out = await new_token(target)
        async with target.grpc_channel(target.auth) as channel:
            await auth_pb2_grpc.AuthServiceStub(channel).Logout(
                auth_pb2.LogoutRequest(), metadata=[("authorization", f"Bearer {logged_out}")]
            )
        stop, attempts = asyncio.Event(), []
        prefix = f"bk-{uuid.uuid4().hex[:8]}"
        tasks = [asyncio.create_task(writer(target, token, "grpc", f"{prefix}-{i}", stop, attempts)) for i in range(4)]
        await until_acknowledged(attempts, 100)  # writes before the backup...
        started = time.monotonic()
        result = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "scripts/backup.py", "create", str(backup)],
            cwd=ROOT, env=stack.env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        finished = time.monotonic()
        assert result.returncode == 0, result.stderr
        await until_acknowledged(attempts, 100, since=finished)  # ...and after it
        stop.set()
        await asyncio.gather(*tasks)
        live_users = int(stack.console("box.space.users:len()"))
    finally:
        stop_all(processes)

    restored = Stack(tmp_path / "restored")
    for part in ("keys", "secrets"):  # the backup brings its own
        shutil.rmtree(restored.data_dir / part)
    subprocess.run(
        [sys.executable, "scripts/backup.py", "restore", str(backup)],
        cwd=ROOT, env=restored.env, check=True, capture_output=True,
    )  # fmt: skip
    process = tarantool(restored).start()
    try:
        console = Console(restored.console_socket)
        found = set(
            console.json(
                "(function(keys) local found = {} for _, key in ipairs(keys) do "
                "if box.space.pairs:get({'', key}) ~= nil then table.insert(found, key) end end return found end)"
                f"(require('json').decode([==[{json.dumps([a.key for a in attempts])}]==]))"
            )
        )
        restored_users = console.json("box.space.users:len()")
        revocations = console.json("box.space.revoked_tokens:len()")
        console.close()
    finally:
        process.stop()
    before = [a.key for a in attempts if a.outcome == ACKED and a.at + a.took <= started]
    after = [a.key for a in attempts if a.at >= finished]
    report(
        {
            "acknowledged_before_backup": len(before),
            "sent_after_backup": len(after),
            "found_in_restore": len(found),
            "backup_seconds": round(finished - started, 2),
            "users": [live_users, restored_users],
        }
    )
    assert before and after
    assert [key for key in before if key not in found] == []  # nothing acknowledged before is missing
    assert [key for key in after if key in found] == []  # nothing written after is there
    assert restored_users == live_users == 2 and revocations == 1  # accounts and the logout too
