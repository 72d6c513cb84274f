"""Sharing by grant against real Tarantool (docs/api.md, "Sharing"): READER and WRITER on a
whole namespace or a prefix, owner-only granting, lists given and received, replacement,
revocation effective for the very next call, and what an account deletion takes along."""

from __future__ import annotations

import grpc
import pytest

from tests.inprocess import PASSWORD
from tests.integration.test_pairs_v2 import native, put, sign_in
from tests.status_details import expect_error, reason
from tkv.auth.v1 import auth_pb2
from tkv.kv.v2 import kv_pb2 as v2

DENIED = grpc.StatusCode.PERMISSION_DENIED


def grant(grantee: str, role=v2.READER, prefix: str = "", namespace: str = "me") -> v2.CreateGrantRequest:
    return v2.CreateGrantRequest(namespace=namespace, grantee=grantee, role=role, prefix=prefix)


def get(namespace: str, key: str) -> v2.GetPairRequest:
    return v2.GetPairRequest(namespace=namespace, key=key)


@pytest.fixture
async def three(svc):
    """An owner with pairs under a/ and b/, and two other users."""
    owner = await sign_in(svc)
    reader = await sign_in(svc)
    writer = await sign_in(svc)
    for key in ("a/1", "a/2", "b/1"):
        await svc.kv2.PutPair(put("me", key, key), metadata=owner[1])
    return owner, reader, writer


async def test_a_prefix_reader_reads_lists_and_watches_only_under_the_prefix(svc, three):
    (owner, owner_md), (reader, reader_md), _ = three
    created = await svc.kv2.CreateGrant(grant(reader.upper(), prefix="a/"), metadata=owner_md)
    assert (created.namespace, created.grantee, created.prefix, created.role) == (
        owner.lower(),
        reader,
        "a/",
        v2.READER,
    )
    assert native(await svc.kv2.GetPair(get(owner, "a/1"), metadata=reader_md)) == "a/1"
    listed = await svc.kv2.ListPairs(v2.ListPairsRequest(namespace=owner, prefix="a/"), metadata=reader_md)
    assert [pair.key for pair in listed.pairs] == ["a/1", "a/2"]
    found = await svc.kv2.BatchGetPairs(
        v2.BatchGetPairsRequest(namespace=owner, keys=["a/1", "a/9"]), metadata=reader_md
    )
    assert [pair.key for pair in found.pairs] == ["a/1"] and list(found.missing_keys) == ["a/9"]
    # Outside the prefix, and writing anywhere: refused, naming the keys.
    error = await expect_error(svc.kv2.GetPair(get(owner, "b/1"), metadata=reader_md), DENIED)
    assert reason(error) == "NOT_GRANTED" and "b/1" in error.details()
    error = await expect_error(
        svc.kv2.BatchGetPairs(v2.BatchGetPairsRequest(namespace=owner, keys=["a/1", "b/1"]), metadata=reader_md), DENIED
    )
    assert "b/1" in error.details() and "a/1" not in error.details()
    await expect_error(svc.kv2.ListPairs(v2.ListPairsRequest(namespace=owner), metadata=reader_md), DENIED)
    error = await expect_error(svc.kv2.PutPair(put(owner, "a/1", "mine"), metadata=reader_md), DENIED)
    assert reason(error) == "NOT_GRANTED" and "write" in error.details()
    await expect_error(svc.kv2.DeletePair(v2.DeletePairRequest(namespace=owner, key="a/1"), metadata=reader_md), DENIED)
    assert native(await svc.kv2.GetPair(get("me", "a/1"), metadata=owner_md)) == "a/1"


async def test_a_writer_of_a_prefix_writes_under_it_and_nowhere_else(svc, three):
    (owner, owner_md), (_, other_md), (writer, writer_md) = three
    await svc.kv2.CreateGrant(grant(writer, v2.WRITER, prefix="a/"), metadata=owner_md)
    # A grant opens the namespace to its grantee alone.
    for call in (
        svc.kv2.GetPair(get(owner, "a/1"), metadata=other_md),
        svc.kv2.PutPair(put(owner, "a/1", "not theirs"), metadata=other_md),
    ):
        error = await expect_error(call, DENIED)
        assert reason(error) == "NAMESPACE_DENIED"
    await svc.kv2.PutPair(put(owner, "a/1", "updated by writer"), metadata=writer_md)
    created = await svc.kv2.PutPair(put(owner, "a/new", 1), metadata=writer_md)
    pair = await svc.kv2.GetPair(get("me", "a/new"), metadata=owner_md)
    assert pair.owner == writer and pair.version == created.revision
    await svc.kv2.DeletePair(v2.DeletePairRequest(namespace=owner, key="a/2"), metadata=writer_md)
    # A batch touching one key outside the prefix changes nothing.
    batch = v2.BatchPutPairsRequest(
        namespace=owner,
        pairs=[
            v2.PairToPut(key="a/3", value=put("", "", 3).value),
            v2.PairToPut(key="b/1", value=put("", "", 3).value),
        ],
    )
    error = await expect_error(svc.kv2.BatchPutPairs(batch, metadata=writer_md), DENIED)
    assert "b/1" in error.details() and "a/3" not in error.details()
    await expect_error(svc.kv2.GetPair(get("me", "a/3"), metadata=owner_md), grpc.StatusCode.NOT_FOUND)
    # The owner always can, and the grantee cannot grant further.
    await svc.kv2.PutPair(put("me", "b/1", "owner"), metadata=owner_md)
    other, _ = await sign_in(svc)
    error = await expect_error(svc.kv2.CreateGrant(grant(other, namespace=owner), metadata=writer_md), DENIED)
    assert reason(error) == "NAMESPACE_DENIED"
    error = await expect_error(
        svc.kv2.DeleteGrant(v2.DeleteGrantRequest(namespace=owner, grantee=writer, prefix="a/"), metadata=writer_md),
        DENIED,
    )


async def test_a_whole_namespace_grant_and_replacing_its_role(svc, three):
    (owner, owner_md), (reader, reader_md), _ = three
    await svc.kv2.CreateGrant(grant(reader), metadata=owner_md)
    listed = await svc.kv2.ListPairs(v2.ListPairsRequest(namespace=owner), metadata=reader_md)
    assert [pair.key for pair in listed.pairs] == ["a/1", "a/2", "b/1"]
    await expect_error(svc.kv2.PutPair(put(owner, "c", 1), metadata=reader_md), DENIED)
    replaced = await svc.kv2.CreateGrant(grant(reader, v2.WRITER), metadata=owner_md)
    assert replaced.role == v2.WRITER
    await svc.kv2.PutPair(put(owner, "c", 1), metadata=reader_md)  # the very next call
    given = await svc.kv2.ListGrants(v2.ListGrantsRequest(namespace="me"), metadata=owner_md)
    assert [(g.grantee, g.prefix, g.role) for g in given.grants] == [(reader, "", v2.WRITER)]
    received = await svc.kv2.ListGrants(v2.ListGrantsRequest(), metadata=reader_md)
    assert [(g.namespace, g.prefix, g.role) for g in received.grants] == [(owner.lower(), "", v2.WRITER)]


async def test_revoking_takes_effect_for_the_very_next_call(svc, three):
    (owner, owner_md), (reader, reader_md), _ = three
    await svc.kv2.CreateGrant(grant(reader, prefix="a/"), metadata=owner_md)
    await svc.kv2.GetPair(get(owner, "a/1"), metadata=reader_md)
    await svc.kv2.DeleteGrant(v2.DeleteGrantRequest(namespace="me", grantee=reader, prefix="a/"), metadata=owner_md)
    error = await expect_error(svc.kv2.GetPair(get(owner, "a/1"), metadata=reader_md), DENIED)
    assert reason(error) == "NAMESPACE_DENIED"
    error = await expect_error(
        svc.kv2.DeleteGrant(v2.DeleteGrantRequest(namespace="me", grantee=reader, prefix="a/"), metadata=owner_md),
        grpc.StatusCode.NOT_FOUND,
    )
    assert reason(error) == "GRANT_NOT_FOUND"
    assert not (await svc.kv2.ListGrants(v2.ListGrantsRequest(), metadata=reader_md)).grants


@pytest.mark.parametrize(
    ("request_", "code", "why"),
    [
        (grant("nobody0000000000xyz"), grpc.StatusCode.NOT_FOUND, "USER_NOT_FOUND"),
        (grant("a"), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_GRANT"),
        (v2.CreateGrantRequest(namespace="me", grantee="someone"), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_GRANT"),
        (grant("someone", prefix="\x00"), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_GRANT"),
        (grant("someone", namespace="shared"), DENIED, "NAMESPACE_DENIED"),
    ],
    ids=["unknown-grantee", "bad-login", "no-role", "bad-prefix", "shared"],
)
async def test_bad_grants_are_refused_precisely(svc, request_, code, why):
    _, md = await sign_in(svc)
    error = await expect_error(svc.kv2.CreateGrant(request_, metadata=md), code)
    assert reason(error) == why


async def test_nobody_grants_to_themselves(svc):
    login, md = await sign_in(svc)
    error = await expect_error(svc.kv2.CreateGrant(grant(login.upper()), metadata=md), grpc.StatusCode.INVALID_ARGUMENT)
    assert "yourself" in error.details()


async def test_deleting_accounts_takes_their_grants_and_leaves_their_writes_ownerless(svc, three):
    (owner, owner_md), _, (writer, writer_md) = three
    await svc.kv2.CreateGrant(grant(writer, v2.WRITER), metadata=owner_md)
    await svc.kv2.CreateGrant(grant(owner, v2.READER), metadata=writer_md)
    await svc.kv2.PutPair(put(owner, "by-writer", 1), metadata=writer_md)
    await svc.auth.DeleteAccount(auth_pb2.DeleteAccountRequest(password=PASSWORD), metadata=writer_md)
    assert (await svc.kv2.GetPair(get("me", "by-writer"), metadata=owner_md)).owner == ""
    assert not (await svc.kv2.ListGrants(v2.ListGrantsRequest(namespace="me"), metadata=owner_md)).grants
    assert not (await svc.kv2.ListGrants(v2.ListGrantsRequest(), metadata=owner_md)).grants
