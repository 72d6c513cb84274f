"""Who a pair counts for (docs/api.md, "Quotas and storage full"): quotas are counted over
the pairs a user owns in any namespace, and the owner of a pair is the user who created it,
so a grantee's creations in a granted namespace count against the grantee's quota, not the
namespace owner's, and deleting them frees the grantee's."""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2

from tests.inprocess import start_services, stop_services, unique
from tests.integration.test_pairs_v2 import put, sign_in, succeeds
from tests.stack import eventually
from tests.status_details import detail_of, expect_error, reason
from tkv.kv.v2 import kv_pb2 as v2


def usage(svc, login: str) -> list[int]:
    """[pairs, bytes] charged to `login`, as stored."""
    row = svc.stack.console(
        f"(function() local u = box.space.usage:get('{login}') return u and (u.pairs .. ' ' .. u.bytes) or '0 0' end)()"
    )
    return [int(n) for n in row.split()]


async def test_a_grantees_creations_count_against_the_grantees_quota_not_the_owners(stack):
    small = await start_services(stack, TKV_KV_QUOTA_PAIRS="2")
    try:
        owner, owner_md = await sign_in(small)
        grantee, grantee_md = await sign_in(small)
        await small.kv2.CreateGrant(
            v2.CreateGrantRequest(namespace="me", grantee=grantee, role=v2.WRITER), metadata=owner_md
        )
        for key in ("g1", "g2"):
            await succeeds(small.kv2.PutPair(put(owner, key, 1), metadata=grantee_md))
        assert usage(small, grantee)[0] == 2 and usage(small, owner) == [0, 0]
        # The grantee is at their quota, in their own namespace and in the owner's...
        for call in (
            small.kv2.PutPair(put("me", "own", 1), metadata=grantee_md),
            small.kv2.PutPair(put(owner, "g3", 1), metadata=grantee_md),
        ):
            error = await expect_error(call, grpc.StatusCode.RESOURCE_EXHAUSTED)
            assert reason(error) == "QUOTA_EXCEEDED"
            violation = detail_of(error, error_details_pb2.QuotaFailure).violations[0]
            assert violation.subject == f"user:{grantee}"
        # ...while the owner's quota is untouched by what stands in their namespace.
        for key in ("o1", "o2"):
            await succeeds(small.kv2.PutPair(put("me", key, 1), metadata=owner_md))
        # Updating a grantee's pair leaves it theirs; deleting it, by anyone, frees their quota.
        await succeeds(small.kv2.PutPair(put("me", "g1", 2), metadata=owner_md))
        await small.kv2.DeletePair(v2.DeletePairRequest(namespace="me", key="g1"), metadata=owner_md)
        assert usage(small, grantee)[0] == 1 and usage(small, owner)[0] == 2
        await succeeds(small.kv2.PutPair(put("me", "own", 1), metadata=grantee_md))
    finally:
        await stop_services(small)


async def test_an_expired_pair_frees_its_owners_quota_when_swept(stack):
    small = await start_services(stack, TKV_KV_QUOTA_PAIRS="1")
    try:
        login, md = await sign_in(small)
        key = unique()
        await small.kv2.PutPair(put("me", key, 1, ttl=1), metadata=md)
        await expect_error(small.kv2.PutPair(put("me", unique(), 1), metadata=md), grpc.StatusCode.RESOURCE_EXHAUSTED)

        async def swept() -> bool:
            return small.stack.console(f"box.space.pairs:get({{'{login}', '{key}'}}) == nil") == "true"

        await eventually(swept, "the sweep of the expired pair", timeout=5)
        assert usage(small, login) == [0, 0]
        await succeeds(small.kv2.PutPair(put("me", unique(), 1), metadata=md))
    finally:
        await stop_services(small)
