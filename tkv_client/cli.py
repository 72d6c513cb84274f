"""`tkv`: the command line of tkv (the key/value API v2 through the gateway).

    tkv register alice --name Alice --surname Smith --password-stdin < password.txt
    tkv login alice --password-stdin < password.txt     # token saved, mode 0600
    tkv put config/color '"blue"' --ttl 3600
    tkv get config/color --output json                   # {"config/color": "blue"}
    tkv ls config/                                       # one key per line
    tkv export config/ > backup.jsonl && tkv import backup.jsonl
    tkv grant bob --role reader --prefix config/          # bob may read config/...
    tkv -n alice ls                                      # as bob: alice's namespace

--server, --namespace and --output go before or after the command (`tkv get k -o json`).

Exit codes: 0 success; 1 any other error; 2 wrong usage; 3 not found; 4 not signed in or
the token refused; 5 permission denied; 6 a version condition failed; 7 a limit (quota,
storage full, too many watches); 8 the service is unavailable. Errors go to stderr, data to
stdout. Shell completion: `eval "$(_TKV_COMPLETE=bash_source tkv)"` (zsh_source, fish_source).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import grpc

from .aio import MAX_BATCH_KEYS, Grant, Pair
from .errors import TkvError
from .sync import Client

EXIT_CODES = {
    grpc.StatusCode.NOT_FOUND: 3,
    grpc.StatusCode.UNAUTHENTICATED: 4,
    grpc.StatusCode.PERMISSION_DENIED: 5,
    grpc.StatusCode.ABORTED: 6,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 7,
    grpc.StatusCode.UNAVAILABLE: 8,
}
NOT_SIGNED_IN = 4


def config_dir() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "tkv"


def _session_file() -> Path:
    return config_dir() / "session.json"


def load_session() -> dict[str, str]:
    try:
        return json.loads(_session_file().read_text())
    except (OSError, ValueError):
        return {}


def save_session(session: dict[str, str]) -> None:
    """Owner-only: the token is a credential."""
    directory = config_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(directory, 0o700)
    path = _session_file()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump(session, file)
    os.chmod(path, 0o600)


def fail(message: str, code: int = 1) -> None:
    click.echo(f"tkv: {message}", err=True)
    sys.exit(code)


class Context:
    def __init__(self, server: str, server_given: bool, namespace: str, output: str):
        self.server, self.server_given = server, server_given
        self.namespace, self.output = namespace, output

    def client(self) -> Client:
        """A client with the saved token, for the server it was issued by (unless
        --server or TKV_SERVER names another)."""
        session = load_session()
        if not session.get("token"):
            fail("not signed in: run `tkv login LOGIN` first", NOT_SIGNED_IN)
        return Client(self.server_of(session), token=session["token"])

    def server_of(self, session: dict[str, str]) -> str:
        """The server a session's token is for, unless --server or TKV_SERVER names another."""
        return self.server if self.server_given else session.get("server", self.server)


def _refuse(error: TkvError) -> None:
    reason = f" ({error.reason})" if error.reason else ""
    fail(f"{error.message}{reason}", EXIT_CODES.get(error.code, 1))


def _run(call):
    try:
        return call()
    except TkvError as error:
        _refuse(error)


def _each(iterator: Iterator) -> Iterator:
    """The items of a client iterator (pages, events), its errors told as by _run."""
    try:
        yield from iterator
    except TkvError as error:
        _refuse(error)


def _password(password_stdin: bool, confirm: bool = False) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=confirm)


def _set(field: str):
    """A global option given after the command: it overrides the one before (or its default)."""

    def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> None:
        if value is not None:
            context = ctx.find_object(Context)
            setattr(context, field, value)
            if field == "server":
                context.server_given = True

    return callback


def _global_options() -> list[click.Option]:
    return [
        click.Option(["--server"], expose_value=False, callback=_set("server"), help="As before the command."),
        click.Option(
            ["--namespace", "-n"], expose_value=False, callback=_set("namespace"), help="As before the command."
        ),
        click.Option(
            ["--output", "-o"],
            type=click.Choice(["table", "json"]),
            expose_value=False,
            callback=_set("output"),
            help="As before the command.",
        ),
    ]


class Commands(click.Group):
    """Every command also takes the global options after its name, where users type them."""

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        if not isinstance(cmd, click.Group):
            cmd.params.extend(_global_options())
        super().add_command(cmd, name)


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--server",
    envvar="TKV_SERVER",
    default="127.0.0.1:8080",
    show_default=True,
    help="The gateway (gRPC for both services).",
)
@click.option("--namespace", "-n", default="me", show_default=True, help="me, a login shared with you, or shared.")
@click.option("--output", "-o", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
def main(ctx: click.Context, server: str, namespace: str, output: str) -> None:
    """The command line of tkv."""
    given = ctx.get_parameter_source("server") != click.core.ParameterSource.DEFAULT
    ctx.obj = Context(server, given, namespace, output)


@main.command()
@click.argument("login")
@click.option("--name", required=True)
@click.option("--surname", required=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@click.pass_obj
def register(obj: Context, login: str, name: str, surname: str, password_stdin: bool) -> None:
    """Create an account."""
    password = _password(password_stdin, confirm=True)
    with Client(obj.server) as client:
        click.echo(_run(lambda: client.register(login, password, name, surname)))


@main.command()
@click.argument("login")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@click.pass_obj
def login(obj: Context, login: str, password_stdin: bool) -> None:
    """Sign in; the token is kept in $XDG_CONFIG_HOME/tkv/ (owner-only) for 30 minutes."""
    password = _password(password_stdin)
    with Client(obj.server, login=login, password=password) as client:
        token = _run(client.log_in)
    save_session({"server": obj.server, "login": login, "token": token})
    click.echo(f"signed in as {login}")


@main.command()
@click.option("--everywhere", is_flag=True, help="Revoke every token of the account, on every device.")
@click.pass_obj
def logout(obj: Context, everywhere: bool) -> None:
    """Revoke the saved token (or every token of the account) and forget it."""
    with obj.client() as client:
        _run(client.log_out_everywhere if everywhere else client.log_out)
    save_session({})
    click.echo("signed out everywhere" if everywhere else "signed out")


@main.command()
@click.option(
    "--password-stdin", is_flag=True, help="Read the current password, then the new one, from stdin's first two lines."
)
@click.pass_obj
def passwd(obj: Context, password_stdin: bool) -> None:
    """Change the password. Every token of the account is revoked; this one is renewed."""
    if password_stdin:
        old, new = sys.stdin.readline().rstrip("\n"), sys.stdin.readline().rstrip("\n")
    else:
        old = click.prompt("Current password", hide_input=True)
        new = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    session = load_session()
    with obj.client() as client:
        _run(lambda: client.change_password(old, new))
    with Client(obj.server_of(session), login=session["login"], password=new) as client:
        token = _run(client.log_in)
    save_session({**session, "token": token})
    click.echo("password changed; every other session is signed out")


@main.group(cls=Commands)
def account() -> None:
    """The account itself."""


@account.command("delete")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@click.pass_obj
def account_delete(obj: Context, password_stdin: bool) -> None:
    """Delete the account, its pairs and its grants, for good (the password confirms it)."""
    password = _password(password_stdin)
    with obj.client() as client:
        _run(lambda: client.delete_account(password))
    save_session({})
    click.echo("account deleted")


def _pair_json(pair: Pair, long: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"key": pair.key}
    if pair.value is not None or not long:
        out["value"] = pair.value
    if long:
        out.update(
            version=pair.version,
            owner=pair.owner,
            update_time=pair.update_time.isoformat(),
            expire_time=pair.expire_time.isoformat() if pair.expire_time else None,
        )
    return out


@main.command()
@click.argument("keys", nargs=-1, required=True)
@click.pass_obj
def get(obj: Context, keys: tuple[str, ...]) -> None:
    """Print the values of KEYS (json: one object key -> value). Exit 3 if any is absent."""
    with obj.client() as client:
        found, missing = _run(lambda: client.get_many(list(keys), namespace=obj.namespace))
    if obj.output == "json":
        click.echo(json.dumps({pair.key: pair.value for pair in found}, ensure_ascii=False))
    else:
        for pair in found:
            click.echo(f"{pair.key}\t{json.dumps(pair.value, ensure_ascii=False)}")
    if missing:
        fail("absent: " + " ".join(missing), EXIT_CODES[grpc.StatusCode.NOT_FOUND])


@main.command()
@click.argument("key")
@click.argument("value")
@click.option("--ttl", type=float, help="Seconds until the pair expires (at least 1).")
@click.option("--if-version", type=int, help="Only if the pair's version is this (0: only if absent).")
@click.pass_obj
def put(obj: Context, key: str, value: str, ttl: float | None, if_version: int | None) -> None:
    """Create or replace KEY with VALUE (JSON: '"text"', 42, '{"a": 1}'); prints the revision."""
    try:
        native = json.loads(value)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON ({exc}); quote strings: '\"text\"'", param_hint="VALUE") from None
    with obj.client() as client:
        revision = _run(lambda: client.put(key, native, ttl=ttl, if_version=if_version, namespace=obj.namespace))
    click.echo(json.dumps({"revision": revision}) if obj.output == "json" else revision)


@main.command()
@click.argument("keys", nargs=-1, required=True)
@click.pass_obj
def rm(obj: Context, keys: tuple[str, ...]) -> None:
    """Delete KEYS; exit 3 if any was absent (the others are deleted)."""
    with obj.client() as client:
        missing = _run(lambda: client.delete_many(list(keys), namespace=obj.namespace))
    if missing:
        fail("absent: " + " ".join(missing), EXIT_CODES[grpc.StatusCode.NOT_FOUND])


@main.command()
@click.argument("prefix", default="")
@click.option("--long", "-l", is_flag=True, help="Versions, owners and times too.")
@click.pass_obj
def ls(obj: Context, prefix: str, long: bool) -> None:
    """List the keys under PREFIX, one per line (json: one object per line)."""
    with obj.client() as client:
        for pair in _each(client.list(prefix, keys_only=not long, namespace=obj.namespace)):
            if obj.output == "json":
                click.echo(json.dumps(_pair_json(pair, long), ensure_ascii=False))
            elif long:
                expires = pair.expire_time.isoformat() if pair.expire_time else "-"
                owner = pair.owner or "-"
                click.echo(f"{pair.key}\t{pair.version}\t{owner}\t{pair.update_time.isoformat()}\t{expires}")
            else:
                click.echo(pair.key)


@main.command()
@click.argument("prefix", default="")
@click.option("--start-revision", type=int, default=0, help="Every change after this revision (0: from now).")
@click.pass_obj
def watch(obj: Context, prefix: str, start_revision: int) -> None:
    """Print changes under PREFIX as they happen, one JSON object per line, until Ctrl-C."""
    with obj.client() as client:
        try:
            for event in _each(client.watch(prefix, start_revision=start_revision, namespace=obj.namespace)):
                line = {"type": event.type, **_pair_json(event.pair, long=True)}
                click.echo(json.dumps(line, ensure_ascii=False))
        except KeyboardInterrupt:
            pass


def _read_lines(path: Path) -> Iterator[tuple[int, dict]]:
    with path.open(encoding="utf-8") as file:
        for number, line in enumerate(file, 1):
            if line.strip():
                try:
                    item = json.loads(line)
                    yield number, {"key": item["key"], "value": item["value"]}
                except (ValueError, KeyError, TypeError):
                    fail(f"{path}:{number}: not a JSON object with key and value")


@main.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--batch", type=click.IntRange(1, MAX_BATCH_KEYS), default=MAX_BATCH_KEYS, show_default=True)
@click.pass_obj
def import_(obj: Context, file: Path, batch: int) -> None:
    """Write the pairs of FILE (JSON Lines: {"key": ..., "value": ...}) in batches, with a
    progress bar on a terminal. Interrupted, it resumes where it stopped: FILE.progress
    holds the lines done, and is removed at the end."""
    from rich.console import Console
    from rich.progress import Progress

    checkpoint = file.with_name(file.name + ".progress")
    done = int(checkpoint.read_text()) if checkpoint.exists() else 0
    items = list(_read_lines(file))
    total = len(items)
    shown = Progress(console=Console(stderr=True), disable=not sys.stderr.isatty(), transient=True)
    with obj.client() as client, shown as progress:
        task = progress.add_task(f"importing {file.name}", total=total, completed=done)
        for start in range(done, total, batch):
            chunk = items[start : start + batch]
            pairs = [(item["key"], item["value"]) for _, item in chunk]
            _run(lambda pairs=pairs: client.put_many(pairs, namespace=obj.namespace))
            checkpoint.write_text(str(start + len(chunk)))
            progress.update(task, completed=start + len(chunk))
    checkpoint.unlink(missing_ok=True)
    click.echo(f"imported {total - done} pairs" + (f" ({done} were done before)" if done else ""), err=True)


@main.command()
@click.argument("prefix", default="")
@click.pass_obj
def export(obj: Context, prefix: str) -> None:
    """Print every pair under PREFIX as JSON Lines ({"key": ..., "value": ...}), for import."""
    with obj.client() as client:
        for pair in _each(client.list(prefix, namespace=obj.namespace)):
            click.echo(json.dumps({"key": pair.key, "value": pair.value}, ensure_ascii=False))


ROLES = {"reader": "READER", "writer": "WRITER"}


def _grant_line(grant: Grant) -> str:
    fields = (grant.namespace, grant.grantee, grant.prefix or "*", grant.role.lower(), grant.create_time.isoformat())
    return "\t".join(fields)


def _grant_json(grant: Grant) -> str:
    return json.dumps(
        {"namespace": grant.namespace, "grantee": grant.grantee, "prefix": grant.prefix,
         "role": grant.role.lower(), "create_time": grant.create_time.isoformat()},
        ensure_ascii=False,
    )  # fmt: skip


@main.command()
@click.argument("login")
@click.option(
    "--role", type=click.Choice(sorted(ROLES)), required=True, help="reader: read and watch; writer: also write."
)
@click.option("--prefix", default="", help="Only keys starting with this (default: the whole namespace).")
@click.pass_obj
def grant(obj: Context, login: str, role: str, prefix: str) -> None:
    """Share your namespace (or PREFIX of it) with LOGIN; a second grant on the same prefix
    changes the role."""
    with obj.client() as client:
        given = _run(lambda: client.grant(login, ROLES[role], prefix=prefix))
    click.echo(_grant_json(given) if obj.output == "json" else _grant_line(given))


@main.command()
@click.argument("login")
@click.option("--prefix", default="", help="The grant's prefix (default: the grant on the whole namespace).")
@click.pass_obj
def revoke(obj: Context, login: str, prefix: str) -> None:
    """Revoke LOGIN's grant; their watches that relied on it end. Exit 3 if there is none."""
    with obj.client() as client:
        _run(lambda: client.revoke(login, prefix=prefix))


@main.command()
@click.option("--received", is_flag=True, help="The grants others gave you, instead of those you gave.")
@click.pass_obj
def grants(obj: Context, received: bool) -> None:
    """List grants, one per line: namespace, grantee, prefix (* = all), role, time."""
    with obj.client() as client:
        for given in _run(lambda: client.grants(received=received)):
            click.echo(_grant_json(given) if obj.output == "json" else _grant_line(given))
