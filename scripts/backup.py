"""Back up a running Tarantool of tkv, and restore a backup into a fresh data dir.

    python scripts/backup.py create BACKUP_DIR      # from the running instance
    python scripts/backup.py restore BACKUP_DIR     # into $TKV_DATA_DIR, which must be fresh

`create` talks to the instance's admin console (TKV_TARANTOOL_CONSOLE_SOCKET, which must be
on): it takes a snapshot, so the backup holds every write acknowledged before that moment,
then copies that snapshot while `box.backup.start()` keeps Tarantool from removing it, and
the JWT keys and Tarantool secrets of $TKV_DATA_DIR (the backup is only usable with them).
Writes go on meanwhile. `restore` copies it all into a data dir that has no Tarantool
files yet; start Tarantool (`make run`) on it. Everything is written owner-only.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

# Run as a script: this checkout's packages, not whichever tkv the venv has installed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tkv_common.admin_console import Console
from tkv_common.settings import Env

# The parts of a data dir a backup carries besides Tarantool's files (tkv_common.devsecrets).
CARRIED = ("keys", "secrets")


def _private_copy(source: Path, target: Path) -> None:
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    shutil.copy2(source, target)
    target.chmod(0o600)


def create(backup_dir: Path, data_dir: Path, console_socket: Path) -> dict:
    if backup_dir.exists() and any(backup_dir.iterdir()):
        raise SystemExit(f"backup: {backup_dir} is not empty")
    console = Console(console_socket)
    try:
        work_dir = Path(console.json("box.cfg.work_dir"))
        console.run("box.snapshot()")
        # Names relative to the work dir; kept from removal until backup.stop().
        files = console.json("box.backup.start()")
        try:
            for name in files:
                _private_copy(work_dir / name, backup_dir / "tarantool" / Path(name).name)
        finally:
            console.run("box.backup.stop()")
        vclock = console.json("box.info.vclock")
    finally:
        console.close()
    for part in CARRIED:
        for path in sorted((data_dir / part).rglob("*")):
            if path.is_file():
                _private_copy(path, backup_dir / part / path.relative_to(data_dir / part))
    manifest = {"created_at": time.time(), "files": [Path(name).name for name in files], "vclock": vclock}
    (backup_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def restore(backup_dir: Path, data_dir: Path) -> None:
    manifest = json.loads((backup_dir / "manifest.json").read_text())
    target = data_dir / "tarantool"
    if target.exists() and any(target.iterdir()):
        raise SystemExit(f"restore: {target} already holds Tarantool files; restore into a fresh data dir")
    for name in manifest["files"]:
        _private_copy(backup_dir / "tarantool" / name, target / name)
    for part in CARRIED:
        for path in sorted((backup_dir / part).rglob("*")):
            if path.is_file():
                _private_copy(path, data_dir / part / path.relative_to(backup_dir / part))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("create", "restore"))
    parser.add_argument("backup_dir", type=Path)
    args = parser.parse_args(argv)
    env = Env()
    data_dir = env.data_dir()
    if args.command == "create":
        console = env.str("TKV_TARANTOOL_CONSOLE_SOCKET")
        if not console:
            raise SystemExit("backup: set TKV_TARANTOOL_CONSOLE_SOCKET to the running instance's console socket")
        manifest = create(args.backup_dir, data_dir, Path(console))
        print(f"backup: {len(manifest['files'])} Tarantool file(s) and the keys into {args.backup_dir}")
    else:
        restore(args.backup_dir, data_dir)
        print(f"restore: {args.backup_dir} into {data_dir}; start Tarantool on it")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
