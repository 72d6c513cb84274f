"""Helpers that read typed settings from environment variables, with clear errors.

Each service's config.py builds its frozen settings object with these, once, in main.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


class ConfigError(ValueError):
    """A setting is present but invalid; the message names the variable."""


class Env:
    """Typed access to one environment mapping (os.environ in production, a dict in tests)."""

    def __init__(self, environ: Mapping[str, str] | None = None):
        self._environ = os.environ if environ is None else environ

    def str(self, name: str, default: str) -> str:
        value = self._environ.get(name, "")
        return value if value != "" else default

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.str(name, default)
        if value not in choices:
            raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
        return value

    def int(self, name: str, default: int, *, minimum: int = 1) -> int:
        raw = self._environ.get(name, "")
        if raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
        if value < minimum:
            raise ConfigError(f"{name} must be at least {minimum}, got {value}")
        return value

    def percent(self, name: str, default: int) -> int:
        """A whole percentage, 1 to 100."""
        value = self.int(name, default)
        if value > 100:
            raise ConfigError(f"{name} must be a percentage from 1 to 100, got {value}")
        return value

    def float(self, name: str, default: float) -> float:
        raw = self._environ.get(name, "")
        if raw == "":
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {raw!r}") from None
        if not value > 0:
            raise ConfigError(f"{name} must be positive, got {raw!r}")
        return value

    def path(self, name: str, default: Path) -> Path:
        return Path(self.str(name, str(default))).expanduser().resolve()

    def address(self, name: str, default: str) -> Address:
        return Address.parse(self.str(name, default), name)

    def secret(self, name: str, file_default: Path) -> str:
        """`NAME` itself, else the contents of `NAME_FILE` (default `file_default`)."""
        direct = self._environ.get(name, "")
        if direct:
            return direct
        path = self.path(f"{name}_FILE", file_default)
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                f"{name} is not set and {path} cannot be read ({exc.strerror}); "
                "run `python -m tkv_common.devsecrets` for development secrets"
            ) from None
        if not value:
            raise ConfigError(f"{path} (for {name}) is empty")
        return value

    def data_dir(self) -> Path:
        """TKV_DATA_DIR: the root of all local state (default ./var)."""
        return self.path("TKV_DATA_DIR", Path("var"))


@dataclass(frozen=True)
class Address:
    """host:port; IPv6 hosts in brackets ([::1]:50051)."""

    host: str
    port: int

    @classmethod
    def parse(cls, raw: str, name: str = "address") -> Address:
        host, sep, port = raw.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ConfigError(f"{name} must be host:port, got {raw!r}")
        return cls(host.strip("[]"), int(port))

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
