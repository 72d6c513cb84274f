"""Every RPC in the protos has its client method, its CLI command where a user would type
one, its route in the published HTTP description (docs/openapi.json), and its access rules:
public, any valid token, or a row of the v2 access matrix (tests/e2e/test_http_api_v2.py).
The blocking client offers what the asyncio one does, with the same parameters. A new RPC
fails here until each layer (or a reason why not) has it."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import click

from auth_svc.server import PUBLIC_METHODS
from tests.e2e import test_http_api_v2 as access_matrix
from tkv.auth.v1 import auth_pb2
from tkv.kv.v1 import kv_pb2 as kv1_pb2
from tkv.kv.v2 import kv_pb2
from tkv_client import AsyncClient, Client
from tkv_client.cli import main

OPENAPI = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"

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

# Who may call each RPC. PUBLIC: no token (auth_svc/server.py PUBLIC_METHODS); TOKEN: any
# valid token, nothing else to decide (v1 has one shared store; an account call acts on the
# token's own account); MATRIX: who may act on which namespace, one row per call in the
# access matrix.
PUBLIC, TOKEN, MATRIX = "public", "token", "matrix"
ACCESS = {
    "tkv.auth.v1.AuthService.Register": PUBLIC,
    "tkv.auth.v1.AuthService.Login": PUBLIC,
    "tkv.auth.v1.AuthService.GetJwks": PUBLIC,
    "tkv.auth.v1.AuthService.Logout": TOKEN,
    "tkv.auth.v1.AuthService.ChangePassword": TOKEN,
    "tkv.auth.v1.AuthService.LogoutAll": TOKEN,
    "tkv.auth.v1.AuthService.DeleteAccount": TOKEN,
    "tkv.kv.v1.KeyValueService.Read": TOKEN,
    "tkv.kv.v1.KeyValueService.Write": TOKEN,
    **{
        f"tkv.kv.v2.KeyValueService.{method.name}": MATRIX
        for method in kv_pb2.DESCRIPTOR.services_by_name["KeyValueService"].methods
    },
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
    assert set(ACCESS) == every_rpc()


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


def operation_ids() -> set[str]:
    description = json.loads(OPENAPI.read_text())
    return {
        operation["operationId"]
        for path in description["paths"].values()
        for operation in path.values()
        if isinstance(operation, dict) and "operationId" in operation
    }


def test_every_rpc_has_a_route_in_the_published_description():
    # scripts/openapi.py names each operation <api>_<version>_<Method>, with a suffix where
    # one RPC has two routes (kv_v2_ListGrants_received).
    published = operation_ids()
    for rpc in every_rpc():
        _, api, version, _, method = rpc.split(".")
        operation = f"{api}_{version}_{method}"
        assert any(o == operation or o.startswith(operation + "_") for o in published), (
            f"{rpc}: no route in docs/openapi.json (operationId {operation})"
        )


def test_the_public_rpcs_are_the_ones_the_auth_service_lets_in_without_a_token():
    public = {rpc for rpc, access in ACCESS.items() if access == PUBLIC}
    assert {"/" + rpc.rsplit(".", 1)[0] + "/" + rpc.rsplit(".", 1)[1] for rpc in public} == set(PUBLIC_METHODS)


def test_every_rpc_decided_per_namespace_has_its_rows_in_the_access_matrix():
    in_matrix = {rpc.rsplit(".", 1)[1] for rpc, access in ACCESS.items() if access == MATRIX}
    assert in_matrix <= set(access_matrix.CALLS), f"not in the access matrix: {in_matrix - set(access_matrix.CALLS)}"
    for name in in_matrix:
        # A row is made as an HTTP request and as a gRPC one (KeyError for a call without).
        assert access_matrix.http_request(name, "ns", "key", "grantee")
        assert access_matrix.grpc_request(name, "ns", "key", "grantee")
