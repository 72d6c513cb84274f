"""Typed reading of the TKV_* environment variables, with clear errors.

Each service's config.py builds its frozen settings object with these, once, in main; the
names, defaults and bounds are tkv_common/catalogue.py's. As a command, for the shell:

    python -m tkv_common.settings get NAME...              each value, one per line
    python -m tkv_common.settings shell [--stack] NAME...  NAME='value' lines to eval
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .catalogue import SETTINGS, ByService, Computed, Setting


class ConfigError(ValueError):
    """A setting is present but invalid; the message names the variable."""


def setting_named(name: str) -> Setting:
    try:
        return SETTINGS[name]
    except KeyError:
        raise KeyError(f"{name} is not defined in tkv_common/catalogue.py") from None


class Env:
    """Typed access to one environment mapping (os.environ in production, a dict in tests).

    Each reader takes only a name: the default, and the bound a number must meet, come from
    tkv_common/catalogue.py, and a name missing there is a programming error (KeyError).
    """

    def __init__(self, environ: Mapping[str, str] | None = None, *, service: str | None = None, stack: bool = False):
        self._environ = os.environ if environ is None else environ
        # Picks ByService defaults (the Tarantool user a service logs in as).
        self._service = service
        # The defaults scripts/run.sh gives (Setting.stack) before the catalogue's own.
        self._stack = stack

    def _given(self, name: str, kind: str) -> tuple[Setting, str]:
        """The setting, and its value if set (empty counts as unset)."""
        setting = setting_named(name)
        if setting.kind != kind:
            raise TypeError(f"{name} is of kind {setting.kind} in tkv_common/catalogue.py, read as {kind}")
        return setting, self._environ.get(name, "")

    def default(self, name: str):
        """The catalogue's default for `name`, worked out for this environment."""
        setting = setting_named(name)
        default = setting.stack if self._stack and setting.stack is not None else setting.default
        if isinstance(default, Computed):
            return default.value(self)
        if isinstance(default, ByService):
            if self._service is None:
                raise TypeError(f"{name}'s default depends on the service: Env(service=...) must name it")
            return getattr(default, self._service)
        if isinstance(default, str):
            return TEMPLATE.sub(lambda match: self.text(match[1]), default)
        return default

    def text(self, name: str) -> str:
        """The value as a service would read it, written out (for templates and the shell)."""
        kind = setting_named(name).kind
        if kind == "secret":
            raise ConfigError(f"{name} is a secret: it is never written out")
        value = (
            getattr(self, kind)(name) if kind in TEXT_READERS else (self._environ.get(name, "") or self.default(name))
        )
        if isinstance(value, bool):
            return "true" if value else "false"
        return "" if value is None else str(value)

    def str(self, name: str) -> str:
        _, value = self._given(name, "str")
        return value or self.default(name) or ""

    def choice(self, name: str) -> str:
        setting, value = self._given(name, "choice")
        value = value or self.default(name)
        if value not in setting.choices:
            raise ConfigError(f"{name} must be one of {', '.join(setting.choices)}, got {value!r}")
        return value

    def int(self, name: str) -> int:
        return self._int(name, "int")

    def percent(self, name: str) -> int:
        """A whole percentage, 1 to 100."""
        value = self._int(name, "percent")
        if value > 100:
            raise ConfigError(f"{name} must be a percentage from 1 to 100, got {value}")
        return value

    def _int(self, name: str, kind: str) -> int:
        setting, raw = self._given(name, kind)
        if raw == "":
            return self.default(name)
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
        minimum = 1 if setting.minimum is None else setting.minimum
        if value < minimum:
            raise ConfigError(f"{name} must be at least {minimum}, got {value}")
        if setting.maximum is not None and value > setting.maximum:
            raise ConfigError(f"{name} must be at most {setting.maximum}, got {value}")
        return value

    def float(self, name: str) -> float:
        _, raw = self._given(name, "float")
        if raw == "":
            return self.default(name)
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {raw!r}") from None
        if not value > 0:
            raise ConfigError(f"{name} must be positive, got {raw!r}")
        return value

    def path(self, name: str) -> Path:
        _, value = self._given(name, "path")
        return Path(value or self.default(name)).expanduser().resolve()

    def address(self, name: str) -> Address:
        _, value = self._given(name, "address")
        return Address.parse(value or self.default(name), name)

    def secret(self, name: str) -> str:
        """`NAME` itself, else the contents of the file `NAME_FILE` names."""
        _, direct = self._given(name, "secret")
        if direct:
            return direct
        path = self.path(f"{name}_FILE")
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

    def foreign(self, name: str) -> str:
        """Another program's variable (OpenTelemetry's OTEL_*, say): its value, or ''.
        Its meaning and default are that program's, so the catalogue holds none."""
        return self._environ.get(name, "")

    def data_dir(self) -> Path:
        """The root of all local state."""
        return self.path("TKV_DATA_DIR")


# A setting named inside a default ($TKV_DATA_DIR/secrets): its value stands in.
TEMPLATE = re.compile(r"\$(TKV_[A-Z0-9_]+)")
# Kinds whose reader gives a value worth writing out; secrets are never printed.
TEXT_READERS = frozenset({"str", "choice", "int", "percent", "float", "path", "address"})


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


def main(argv: list[str]) -> int:
    """`get NAME...` or `shell [--stack] NAME...` (--stack: as scripts/run.sh starts the stack)."""
    command, *names = argv or [""]
    stack = command == "shell" and names[:1] == ["--stack"]
    names = names[1:] if stack else names
    if command not in ("get", "shell") or not names:
        print(main.__doc__, file=sys.stderr)
        return 2
    env = Env(stack=stack)
    try:
        for name in names:
            value = env.text(name)
            print(value if command == "get" else f"{name}={shlex.quote(value)}")
    except KeyError as exc:
        print(f"settings: {exc.args[0]}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"settings: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
