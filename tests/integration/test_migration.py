"""A data dir written by the release before v2 (schema v5) is upgraded in place by today's
tarantool/init.lua, with nothing lost: its pairs move to the shared namespace, owner
unknown, readable through v1 and v2."""

from __future__ import annotations

import grpc
import jwt
import pytest
from google.protobuf import json_format, struct_pb2
from passlib.hash import argon2 as PasswordHash

from tests.inprocess import PASSWORD, register_and_login, start_services, stop_services
from tests.stack import ROOT, Process, Stack, require_binary, tarantool
from tests.tokens_for_tests import bearer
from tkv.auth.v1 import auth_pb2
from tkv.kv.v1 import kv_pb2 as v1
from tkv.kv.v2 import kv_pb2 as v2

SCHEMA_V5 = ROOT / "tests" / "fixtures" / "schema_v5" / "init.lua"
OLD_HASH = PasswordHash.using(memory_cost=1024, rounds=1, parallelism=1).hash(PASSWORD)

# What the v5 kv_svc stored: encoded google.protobuf.Value bytes as MP_BIN (its
# tkv.blobs), and, from versions before that, native MessagePack and bare {key} nulls.
BLOB_PAIRS = {"blob/obj": {"a": [1, "ü", None]}, "blob/str": "text", "blob with space": 2.5}
NATIVE_PAIRS = {"native/map": "{n = 1, s = 'x'}", "native/str": "'plain'"}


def value_hex(native) -> str:
    return json_format.ParseDict(native, struct_pb2.Value()).SerializeToString().hex()


@pytest.fixture
def old_data_dir(tmp_path_factory):
    stack = Stack(tmp_path_factory.mktemp("migration"))
    old = Process("tarantool", [require_binary("tarantool"), str(SCHEMA_V5)], stack, stack.tarantool_port).start()
    try:
        for key, native in BLOB_PAIRS.items():
            stack.console(
                f"require('tkv.blobs').insert(box.space.kv.id, '{key}', "
                f"(string.gsub('{value_hex(native)}', '..', function(h) return string.char(tonumber(h, 16)) end)))"
            )
        for key, lua in NATIVE_PAIRS.items():
            stack.console(f"box.space.kv:insert({{'{key}', {lua}}})")
        stack.console("box.space.kv:insert({'native/null'})")
        # A user registered before: a real argon2 hash of tests.inprocess.PASSWORD.
        stack.console(f"box.space.users:insert({{'OldUser', '{OLD_HASH}', 'Anna', 'Smith', 0}})")
        assert stack.console("box.space.kv:len()") == "6"
        assert stack.console("box.space._schema:get('oncetkv:schema:v6') == nil") == "true"
    finally:
        old.stop()
    return stack


async def test_a_v5_data_dir_is_upgraded_in_place_with_every_pair_readable(old_data_dir):
    stack = old_data_dir
    new = tarantool(stack).start()
    try:
        assert stack.console("box.space.kv == nil") == "true"
        assert stack.console("box.space.pairs:len()") == "6"
        # v11: the failover's barrier space (tarantool/tkv/ha.lua demote), local to the node.
        assert stack.console("box.space.ha_barrier.is_local") == "true"
        services = await start_services(stack)
        try:
            _, token = await register_and_login(services)
            md = bearer(token)
            expected = {
                **BLOB_PAIRS,
                "native/map": {"n": 1, "s": "x"},
                "native/str": "plain",
                "native/null": None,
            }
            read = await services.kv.Read(v1.ReadRequest(keys=list(expected)), metadata=md)
            assert json_format.MessageToDict(read.data) == expected
            found = await services.kv2.BatchGetPairs(
                v2.BatchGetPairsRequest(namespace="shared", keys=list(expected)), metadata=md
            )
            assert {p.key: json_format.MessageToDict(p.value) for p in found.pairs} == expected
            # Moved as one write batch: revision 1, owner unknown; nobody may change them.
            assert {(p.version, p.create_version, p.owner) for p in found.pairs} == {(1, 1, "")}
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await services.kv2.DeletePair(v2.DeletePairRequest(namespace="shared", key="blob/str"), metadata=md)
            assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED
            # The store goes on from there: the next write is revision 2.
            written = await services.kv2.PutPair(
                v2.PutPairRequest(namespace="me", key="new", value=struct_pb2.Value(bool_value=True)), metadata=md
            )
            assert written.revision == 2
            # The user from before has an account id now (schema v7), logs in as before, and
            # the token names that account.
            old = await services.auth.Login(auth_pb2.LoginRequest(login="olduser", password=PASSWORD))
            account_id = stack.console("box.space.users:get('OldUser').account_id")
            claims = jwt.decode(old.token, options={"verify_signature": False})
            assert (claims["sub"], claims["account_id"], claims["token_epoch"]) == ("OldUser", account_id, 0)
            await services.kv.Read(v1.ReadRequest(keys=["blob/str"]), metadata=bearer(old.token))
        finally:
            await stop_services(services)
    finally:
        new.stop()
    # A second start of the upgraded dir changes nothing.
    again = tarantool(stack).start()
    try:
        assert stack.console("box.space.pairs:len()") == "7"
        assert stack.console("box.space.counters:get('revision').value") == "2"
    finally:
        again.stop()
