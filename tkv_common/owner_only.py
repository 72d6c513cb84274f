"""Local paths only this user may use: the services' worker sockets answer like the service
port itself, so their directory and files are owner-only, checked on every start."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from .settings import ConfigError

log = logging.getLogger(__name__)


def _own(path: Path, mode: int) -> None:
    status = path.stat()
    if status.st_uid != os.getuid():
        raise ConfigError(f"{path} belongs to uid {status.st_uid}, not to this user (uid {os.getuid()}): refusing it")
    if stat.S_IMODE(status.st_mode) != mode:
        log.warning("made owner-only", extra={"path": str(path), "was": oct(stat.S_IMODE(status.st_mode))})
        path.chmod(mode)


def owner_only_dir(path: Path) -> None:
    """Creates `path` (0700) or checks an existing one: ours, and made 0700 if it was not."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    _own(path, 0o700)


def owner_only_file(path: Path) -> None:
    """An existing file or socket: ours, and 0600."""
    _own(path, 0o600)
