"""One source per setting: tkv_common/catalogue.py holds every TKV_* variable's default, and
nothing else in the repository writes one down, documents one by hand or reads one it lacks."""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from scripts import openapi, settings_table
from tkv_client import cli
from tkv_common.catalogue import CATALOGUE, SECTIONS, SETTINGS, ByService, Computed, MiB, Setting
from tkv_common.settings import TEMPLATE, ConfigError, Env

ROOT = Path(__file__).resolve().parents[2]
# A mention of a variable; not a family of them (`TKV_GATEWAY_TLS_*`, `TKV_TARANTOOL_<USER>_...`),
# nor click's `_TKV_COMPLETE`.
VARIABLE = re.compile(r"(?<!\w)TKV_[A-Z0-9_]*[A-Z0-9](?![\w*<])")
# Where a default may legitimately stand: the catalogue itself and what is written from it;
# a frozen copy of an old release (the migration tests' fixture); the mutants, whose text is
# meant to break these rules; and this file's own patterns.
EXEMPT = (
    "tkv_common/catalogue.py",
    "tarantool/tkv/defaults.lua",
    "tests/fixtures/",
    "tests/mutants/",
    "tests/unit/test_settings_catalogue.py",
)
# Mentions that prove nothing: the definitions themselves, and text written to break the rules.
UNCOUNTED = ("tkv_common/catalogue.py", "tests/mutants/", "tests/unit/test_settings_catalogue.py")
# A default written beside a read, by language. Each names the shape it catches.
SECOND_DEFAULTS = {
    ".py": [
        re.compile(r"""\.(?:str|int|float|percent|path|address|choice|secret)\(\s*["']TKV_\w+["']\s*,"""),
        re.compile(r"""(?:environ\.get|getenv)\(\s*["']TKV_\w+["']\s*,"""),
    ],
    ".lua": [
        re.compile(r"""\benv(?:_number)?\(\s*['"]TKV_\w+['"]\s*,"""),
        re.compile(r"""getenv\(\s*['"]TKV_\w+['"]\s*\)\s*or\b"""),
    ],
    # Shell, compose, Dockerfiles, Makefile, supervisord: ${TKV_X:-value} (empty is no default).
    "": [re.compile(r"\$\{TKV_\w+:?[-=][^}]")],
    # A second hand-kept settings table (outside a generated block).
    ".md": [re.compile(r"^\| `TKV_\w+`", re.M)],
}


# Not the repository's own text: tools' state and caches, generated stubs (tkv/), local
# state (var*: TKV_DATA_DIR's default, and the docs' var-replica, var-restored) and the
# compose secrets (.env). Walked rather than asked of git: `make mutants` runs these tests
# in a copy without .git.
SKIPPED_DIRS = {".git", ".venv", "node_modules", "__pycache__", ".pytest_cache", ".hypothesis", ".ruff_cache",
                ".mypy_cache", ".schemathesis", "build", "dist"}  # fmt: skip


def _skipped(directory: str, top: bool) -> bool:
    if directory in SKIPPED_DIRS or directory.endswith(".egg-info"):
        return True
    return top and (directory == "tkv" or directory.startswith("var"))


@functools.cache
def repository_files() -> tuple[Path, ...]:
    files = []
    for directory, subdirs, names in os.walk(ROOT):
        top = Path(directory) == ROOT
        subdirs[:] = sorted(d for d in subdirs if not _skipped(d, top))
        for name in sorted(names):
            path = Path(directory) / name
            # .git is a file in a git worktree.
            if (top and name in (".env", ".git")) or not path.is_file():
                continue
            try:
                path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue  # binary
            files.append(path)
    return tuple(files)


@functools.cache
def mentions() -> dict[str, list[str]]:
    """Each variable named in the repository -> where (path:line), outside the catalogue."""
    found: dict[str, list[str]] = {}
    for path in repository_files():
        name = str(path.relative_to(ROOT))
        if name.startswith(UNCOUNTED):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for variable in VARIABLE.findall(line) if "TKV_" in line else ():
                found.setdefault(variable, []).append(f"{name}:{number}")
    return found


def _outside_generated_blocks(text: str) -> str:
    return settings_table.BLOCK.sub("", text)


def test_the_docs_and_lua_defaults_are_written_from_the_catalogue():
    for path, expected in settings_table.rendered().items():
        name = path.relative_to(ROOT)
        if path.suffix == ".md":
            assert settings_table.BLOCK.search(path.read_text()), f"{name} lost its settings-table markers"
        assert path.read_text() == expected, (
            f"{name} differs from tkv_common/catalogue.py: run `python scripts/settings_table.py` "
            "(and change a default in the catalogue, never in a generated file)"
        )


def test_every_tkv_variable_used_in_the_repository_is_in_the_catalogue():
    undefined = {name: places[:3] for name, places in mentions().items() if name not in SETTINGS}
    assert not undefined, "used but not defined (and so not documented) in tkv_common/catalogue.py: " + "; ".join(
        f"{name} at {', '.join(places)}" for name, places in sorted(undefined.items())
    )


def test_every_catalogued_setting_is_read_somewhere():
    generated = {"README.md", "docs/high-availability.md"}
    used = {
        name for name, places in mentions().items() if any(place.rsplit(":", 1)[0] not in generated for place in places)
    }
    # Env.secret reads NAME_FILE beside each secret NAME.
    used |= {f"{name}_FILE" for name in used if name in SETTINGS and SETTINGS[name].kind == "secret"}
    unused = sorted(set(SETTINGS) - used)
    assert not unused, f"in tkv_common/catalogue.py but read nowhere: {', '.join(unused)}"


def test_no_default_is_written_outside_the_catalogue():
    doubled = []
    for path in repository_files():
        name = str(path.relative_to(ROOT))
        if name.startswith(EXEMPT):
            continue
        text = path.read_text(encoding="utf-8")
        patterns = SECOND_DEFAULTS.get(path.suffix, SECOND_DEFAULTS[""])
        if path.suffix == ".md":
            text = _outside_generated_blocks(text)
        for pattern in patterns:
            for match in pattern.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                doubled.append(f"{name}:{line}: {match[0].strip()}")
    assert not doubled, (
        "a default (or a hand-kept settings table) outside tkv_common/catalogue.py; read the "
        "setting through tkv_common.settings instead: " + "; ".join(doubled)
    )


# Prose that quotes a default for its reader, "`TKV_X` (30 s)" or "(default `host:port`)".
QUOTED = re.compile(r"`(TKV_\w+)`\s+\((default\s+)?([^)]+)\)")
UNITS = {"": 1, "s": 1, "ms": 0.001, "min": 60, "minutes": 60, "hour": 3600, "hours": 3600, "MiB": MiB, "%": 1}


def _quoted(text: str, says_default: bool) -> str | float | None:
    """The default a parenthesis states, if it states one plainly: a number with a unit,
    or a `literal` after the word default. Anything else is prose, not checked."""
    text = re.split(r"[,;:] ", text.strip())[0]
    if text.startswith("`"):
        return text.strip("`") if says_default else None
    number = re.fullmatch(r"(\d[\d,]*(?:\.\d+)?)\s*(\w+|%)?", text)
    if number and (number[2] or "") in UNITS:
        return float(number[1].replace(",", "")) * UNITS[number[2] or ""]
    return None


def test_defaults_quoted_in_the_docs_agree_with_the_catalogue():
    """The docs may repeat a default where a reader needs it (docs/api.md's limits), but
    only as the catalogue has it."""
    wrong = []
    for path in repository_files():
        if path.suffix != ".md":
            continue
        for match in QUOTED.finditer(_outside_generated_blocks(path.read_text(encoding="utf-8"))):
            setting, quoted = SETTINGS.get(match[1]), _quoted(match[3], bool(match[2]))
            if setting is None or quoted is None or isinstance(setting.default, Computed | ByService | None):
                continue
            default = setting.default
            agrees = quoted == default if isinstance(quoted, str) else abs(float(default) - quoted) < 1e-9
            if not agrees:
                wrong.append(f"{path.relative_to(ROOT)}: {match[0]!r}, but the default is {default!r}")
    assert not wrong, "docs quote a default the catalogue does not have: " + "; ".join(wrong)


def test_the_cli_defaults_to_the_local_gateway_as_the_catalogue_says():
    """tkv_client ships on its own (scripts/build_client.py) and cannot import the catalogue,
    so its --server default is the one default kept twice; this holds the two together."""
    server = next(option for option in cli.main.params if option.name == "server")
    assert server.envvar == "TKV_SERVER"
    assert server.default == SETTINGS["TKV_SERVER"].default == SETTINGS["TKV_GATEWAY_LISTEN"].default


def test_the_openapi_ttl_pattern_ends_at_the_catalogues_longest_ttl():
    """The published pattern spells the longest TTL out as a regular expression; this holds
    it to the default it was written from."""
    longest, pattern = SETTINGS["TKV_KV_MAX_TTL_SECONDS"].default, re.compile(openapi.TTL_PATTERN)
    assert pattern.match(f"{longest}s") and pattern.match(f"{longest - 1}.5s")
    assert not pattern.match(f"{longest + 1}s") and not pattern.match(f"{longest}.5s")


@pytest.mark.parametrize("setting", CATALOGUE, ids=[s.name for s in CATALOGUE])
def test_each_catalogue_entry_is_well_formed(setting):
    assert setting.section in SECTIONS and setting.meaning
    default = setting.default
    plain = {"int": int, "percent": int, "float": float, "bool": bool}
    if isinstance(default, Computed):
        assert setting.kind in ("int", "float"), "computed defaults are numbers"
    elif setting.kind in plain:
        assert type(default) is plain[setting.kind], f"{setting.name}: default {default!r} is not {setting.kind}"
    else:
        assert default is None or isinstance(default, str | ByService)
    if setting.kind == "choice":
        assert default in setting.choices
    for text in (default, setting.stack):
        if isinstance(text, str):
            assert all(name in SETTINGS for name in TEMPLATE.findall(text)), f"{setting.name}: {text}"
    assert len(SETTINGS) == len(CATALOGUE), "a name is defined twice"


def test_a_template_default_follows_the_setting_it_names(tmp_path):
    env = Env({"TKV_DATA_DIR": str(tmp_path), "TKV_AUTH_LISTEN": "0.0.0.0:6000"}, service="kv_svc")
    assert env.path("TKV_SECRETS_DIR") == tmp_path / "secrets"
    assert env.path("TKV_TARANTOOL_PASSWORD_FILE") == tmp_path / "secrets" / "tarantool-tkv_kv.password"
    assert str(env.address("TKV_AUTH_UPSTREAM")) == "0.0.0.0:6000"


def test_a_settings_bound_comes_from_the_catalogue():
    with pytest.raises(ConfigError, match="TKV_ARGON2_MEMORY_KIB must be at least 8, got 7"):
        Env({"TKV_ARGON2_MEMORY_KIB": "7"}).int("TKV_ARGON2_MEMORY_KIB")
    assert Env({"TKV_JWT_LEEWAY_SECONDS": "0"}).int("TKV_JWT_LEEWAY_SECONDS") == 0
    with pytest.raises(ConfigError, match="TKV_KV_MAX_VALUE_DEPTH must be at most 32, got 33"):
        Env({"TKV_KV_MAX_VALUE_DEPTH": "33"}).int("TKV_KV_MAX_VALUE_DEPTH")
    with pytest.raises(ConfigError, match="TKV_EVENT_LOOP must be one of uvloop, asyncio, got 'trio'"):
        Env({"TKV_EVENT_LOOP": "trio"}).choice("TKV_EVENT_LOOP")


def test_a_setting_outside_the_catalogue_or_read_as_another_type_is_a_programming_error():
    with pytest.raises(KeyError, match=re.escape("TKV_NOPE is not defined in tkv_common/catalogue.py")):
        Env({}).str("TKV_NOPE")
    with pytest.raises(TypeError, match="TKV_WORKERS is of kind int"):
        Env({}).str("TKV_WORKERS")
    with pytest.raises(TypeError, match=re.escape("Env(service=...) must name it")):
        Env({}).str("TKV_TARANTOOL_USER")


def _settings_command(*args: str, environ: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tkv_common.settings", *args],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), **environ},
        capture_output=True,
        text=True,
    )


def test_the_shell_gets_values_as_run_sh_uses_them(tmp_path):
    done = _settings_command(
        "shell", "--stack", "TKV_DATA_DIR", "TKV_WORKER_SOCKET_DIR", "TKV_AUTH_LISTEN", environ={"TKV_DATA_DIR": "a b"}
    )
    data = (ROOT / "a b").resolve()
    assert done.stdout.splitlines() == [
        f"TKV_DATA_DIR='{data}'",
        f"TKV_WORKER_SOCKET_DIR='{data}/run'",
        "TKV_AUTH_LISTEN=127.0.0.1:50051",
    ]
    assert _settings_command("get", "TKV_KV_LISTEN", environ={}).stdout == "127.0.0.1:50052\n"
    refused = _settings_command("get", "TKV_WORKERS", environ={"TKV_WORKERS": "many"})
    assert (refused.returncode, refused.stderr) == (1, "settings: TKV_WORKERS must be an integer, got 'many'\n")
    secret = _settings_command("get", "TKV_TARANTOOL_PASSWORD", environ={"TKV_TARANTOOL_PASSWORD": "pw"})
    assert secret.returncode == 1 and "pw" not in secret.stdout + secret.stderr


def test_a_maximum_on_a_setting_lua_reads_is_refused(monkeypatch):
    # tarantool/tkv/config.lua checks only a minimum: a maximum there would be written down
    # and never enforced.
    bounded = Setting("TKV_PROBE", "int", 1, "probe", "kv", maximum=2, lua=True)
    monkeypatch.setattr(settings_table, "CATALOGUE", [bounded])
    with pytest.raises(ValueError, match=r"TKV_PROBE: tarantool/tkv/config\.lua checks no maximum"):
        settings_table.render_lua()
