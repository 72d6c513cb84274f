"""Make a replica the master of a tkv replica set, in one command (Tarantool 2.6 has no
election; docs/operations.md, "Failover").

    python scripts/failover.py --promote REPLICA_CONSOLE [--demote MASTER_CONSOLE]

Both arguments are admin console sockets (TKV_TARANTOOL_CONSOLE_SOCKET of each instance).
If the old master answers, it is made read-only first, and the replica is given until it
has received everything the old master wrote (a planned switchover loses nothing, in either
replication mode); if it does not answer (it died), it is left alone. Then the replica is
made writable; with synchronous replication its quorum becomes 1 (it is alone until a new
replica joins) and the transactions the old master left waiting for a quorum are settled.
The services, given every address (TKV_TARANTOOL_ADDR=a,b), move to it by themselves.
Prints one JSON line of what was done; exits 1 if the replica did not become writable.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from tkv_common.admin_console import Console

# How long a live old master's last writes may take to reach the replica.
CATCH_UP_SECONDS = 10.0


def _open(path: Path, timeout: float) -> Console | None:
    try:
        return Console(path, timeout=timeout)
    except OSError:
        return None


# box.info.vclock as {"<replica id>": lsn}: component 0 is each instance's own, never replicated.
VCLOCK = (
    "(function() local t = {} for id, lsn in pairs(box.info.vclock) do "
    "if id ~= 0 then t[tostring(id)] = lsn end end return t end)()"
)


def _caught_up(replica: Console, master_vclock: dict[str, int]) -> bool:
    """Whether the replica has applied every row the old master wrote (its vclock)."""
    have = replica.json(VCLOCK)
    return all(have.get(id_, 0) >= lsn for id_, lsn in master_vclock.items())


def failover(promote: Path, demote: Path | None) -> dict:
    started = time.monotonic()
    report: dict = {"promoted": str(promote)}
    replica = _open(promote, timeout=60.0)
    if replica is None:
        raise SystemExit(f"failover: cannot reach the replica's console {promote}")
    old = _open(demote, timeout=5.0) if demote else None
    if demote is not None:
        report["demoted"] = str(demote) if old else "unreachable: left alone"
    if old is not None:
        old.run("box.cfg{read_only = true}")
        vclock = old.json(VCLOCK)
        old.close()
        deadline = time.monotonic() + CATCH_UP_SECONDS
        while not _caught_up(replica, vclock):
            if time.monotonic() > deadline:
                raise SystemExit("failover: the replica did not catch up with the old master; nothing promoted")
            time.sleep(0.05)
    synchronous = replica.json("box.cfg.replication_synchro_quorum") > 1
    if synchronous:
        # On 2.6 clear_synchro_queue() may wait replication_synchro_timeout for what the
        # old master left in the queue.
        replica.run("box.cfg{read_only = false, replication_synchro_quorum = 1}")
        replica.run("box.ctl.clear_synchro_queue()")
    else:
        replica.run("box.cfg{read_only = false}")
    writable = replica.json("box.info.ro") is False
    replica.close()
    report.update(synchronous=synchronous, writable=writable, took_s=round(time.monotonic() - started, 3))
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--promote", type=Path, required=True, help="the replica's admin console socket")
    parser.add_argument("--demote", type=Path, help="the old master's admin console socket, if it may be alive")
    args = parser.parse_args()
    report = failover(args.promote, args.demote)
    print(json.dumps(report))
    return 0 if report["writable"] else 1


if __name__ == "__main__":
    sys.exit(main())
