"""Local paths only this user may use: the services' worker sockets answer like the service
port itself, so their directory and files are owner-only, checked on every start."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from .settings import ConfigError

log = logging.getLogger(__name__)


def _own(path: Path, mode: int, *, found: bool = True) -> None:
    """`found`: the path was there before this process; narrowing it is worth a warning."""
    status = path.stat()
    if status.st_uid != os.getuid():
        raise ConfigError(f"{path} belongs to uid {status.st_uid}, not to this user (uid {os.getuid()}): refusing it")
    if stat.S_IMODE(status.st_mode) != mode:
        if found:
            log.warning("made owner-only", extra={"path": str(path), "was": oct(stat.S_IMODE(status.st_mode))})
        path.chmod(mode)


def owner_only_dir(path: Path) -> None:
    """Creates `path` (0700) or checks an existing one: ours, and made 0700 if it was not."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    _own(path, 0o700)


def owner_only_socket(path: Path) -> None:
    """A Unix socket this process has just created (with the umask's mode): ours, and 0600.
    It sits in an owner-only directory, so the moment before is no exposure."""
    _own(path, 0o600, found=False)
