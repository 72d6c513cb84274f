"""supervisord event listener: a program that keeps failing to start is never left down.

supervisord gives up on a program whose starts keep failing (FATAL, after `startretries`):
the rest of the stack would run on without it, with nothing on the console to say so. This
listener says so on the console, naming the program, and starts it again after a pause
that doubles (1 s to 30 s) for as long as it keeps failing, and resets once it runs.

Registered in scripts/supervisord.conf; speaks supervisord's event listener protocol on
stdin/stdout (supervisor.childutils), so its own messages go to stderr.
"""

from __future__ import annotations

import os
import sys
import threading
import xmlrpc.client

from supervisor import childutils

FIRST_DELAY, MAX_DELAY = 1.0, 30.0


def say(text: str) -> None:
    print(f"revive: {text}", file=sys.stderr, flush=True)


def start_again(name: str) -> None:
    rpc = childutils.getRPCInterface(os.environ)
    try:
        rpc.supervisor.startProcess(name, False)
    except xmlrpc.client.Fault as fault:
        # ALREADY_STARTED (someone started it meanwhile) or SHUTDOWN_STATE: nothing to do.
        say(f"{name}: not started again ({fault.faultString})")


def main() -> None:
    delays: dict[str, float] = {}
    while True:
        headers, payload = childutils.listener.wait(sys.stdin, sys.stdout)
        event = headers["eventname"]
        name = childutils.get_headers(payload.split("\n", 1)[0])["processname"]
        if event == "PROCESS_STATE_RUNNING":
            delays.pop(name, None)
        elif event == "PROCESS_STATE_FATAL":
            delay = delays.get(name, FIRST_DELAY / 2) * 2
            delays[name] = min(delay, MAX_DELAY)
            say(f"{name} could not be started (see its output above); starting it again in {delays[name]:g} s")
            threading.Timer(delays[name], start_again, args=(name,)).start()
        childutils.listener.ok(sys.stdout)


if __name__ == "__main__":
    main()
