"""Every RPC in the protos has its client method, and its CLI command where a user would
type one; the blocking client offers what the asyncio one does, with the same parameters.
A new RPC fails here until the client (and the CLI, or a reason why not) has it."""

from __future__ import annotations

import inspect

import click

from tkv.auth.v1 import auth_pb2
from tkv.kv.v1 import kv_pb2 as kv1_pb2
from tkv.kv.v2 import kv_pb2
from tkv_client import AsyncClient, Client
from tkv_client.cli import main

NO_COMMAND_V1 = "the original's API: the CLI speaks v2 (kept for existing clients)"
# RPC -> (client method, CLI command words and a flag it needs, or why there is none)
COVERAGE: dict[str, tuple[str, tuple[str, ...] | str]] = {
    "tkv.auth.v1.AuthService.Register": ("register", ("register",)),
    "tkv.auth.v1.AuthService.Login": ("log_in", ("login",)),
    "tkv.auth.v1.AuthService.Logout": ("log_out", ("logout",)),
    "tkv.auth.v1.AuthService.GetJwks": ("", "for services that verify tokens; no user calls it"),
    "tkv.auth.v1.AuthService.ChangePassword": ("change_password", ("passwd",)),
    "tkv.auth.v1.AuthService.LogoutAll": ("log_out_everywhere", ("logout", "--everywhere")),
    "tkv.auth.v1.AuthService.DeleteAccount": ("delete_account", ("account", "delete")),
    "tkv.kv.v1.KeyValueService.Read": ("read", NO_COMMAND_V1),
    "tkv.kv.v1.KeyValueService.Write": ("write", NO_COMMAND_V1),
    "tkv.kv.v2.KeyValueService.GetPair": ("get", ("get",)),
    "tkv.kv.v2.KeyValueService.BatchGetPairs": ("get_many", ("get",)),
    "tkv.kv.v2.KeyValueService.PutPair": ("put", ("put",)),
    "tkv.kv.v2.KeyValueService.BatchPutPairs": ("put_many", ("import",)),
    "tkv.kv.v2.KeyValueService.DeletePair": ("delete", ("rm",)),
    "tkv.kv.v2.KeyValueService.BatchDeletePairs": ("delete_many", ("rm",)),
    "tkv.kv.v2.KeyValueService.ListPairs": ("list", ("ls",)),
    "tkv.kv.v2.KeyValueService.Watch": ("watch", ("watch",)),
    "tkv.kv.v2.KeyValueService.CreateGrant": ("grant", ("grant",)),
    "tkv.kv.v2.KeyValueService.ListGrants": ("grants", ("grants",)),
    "tkv.kv.v2.KeyValueService.DeleteGrant": ("revoke", ("revoke",)),
}


def every_rpc() -> set[str]:
    return {
        method.full_name
        for module in (auth_pb2, kv1_pb2, kv_pb2)
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    }


def command_at(words: tuple[str, ...]) -> click.Command | None:
    command: click.Command = main
    for word in words:
        if word.startswith("--"):
            return command if any(word in option.opts for option in command.params) else None
        if not isinstance(command, click.Group) or word not in command.commands:
            return None
        command = command.commands[word]
    return command


def test_every_rpc_is_accounted_for():
    assert set(COVERAGE) == every_rpc()


def test_every_rpc_has_a_client_method_on_both_clients():
    for rpc, (method, _) in COVERAGE.items():
        if method:
            assert callable(getattr(AsyncClient, method, None)), f"{rpc}: no AsyncClient.{method}"
            assert callable(getattr(Client, method, None)), f"{rpc}: no Client.{method}"


def test_every_rpc_a_user_would_call_has_a_cli_command():
    for rpc, (_, command) in COVERAGE.items():
        if isinstance(command, tuple):
            assert command_at(command) is not None, f"{rpc}: no `tkv {' '.join(command)}`"


def test_the_blocking_client_takes_the_same_parameters_as_the_asyncio_one():
    public = ["__init__"] + [n for n, _ in inspect.getmembers(AsyncClient, inspect.isfunction) if not n.startswith("_")]
    assert "grants" in public
    for name in public:
        assert hasattr(Client, name), f"Client has no {name}"
        mine = inspect.signature(getattr(Client, name)).parameters
        theirs = inspect.signature(getattr(AsyncClient, name)).parameters
        assert [(p.name, p.kind, p.default) for p in mine.values()] == [
            (p.name, p.kind, p.default) for p in theirs.values()
        ], name
        assert all(p.kind != p.VAR_KEYWORD for p in mine.values()), f"Client.{name} takes **options"
