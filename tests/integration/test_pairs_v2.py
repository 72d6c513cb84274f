"""tkv.kv.v2 against real Tarantool: namespaces, versions, conditions, expiry, pages,
quotas and storage full (docs/api.md, "v2")."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from google.protobuf import duration_pb2, json_format, struct_pb2
from google.rpc import error_details_pb2

from tests.inprocess import register_and_login, start_services, stop_services, unique
from tests.status_details import detail_of, details, expect_error, reason
from tests.tokens_for_tests import bearer
from tkv.kv.v1 import kv_pb2 as v1
from tkv.kv.v2 import kv_pb2 as v2


def value(native) -> struct_pb2.Value:
    return json_format.ParseDict(native, struct_pb2.Value())


def native(pair: v2.Pair):
    return json_format.MessageToDict(pair.value)


def put(namespace: str, key: str, data, expected: int | None = None, ttl: float | None = None) -> v2.PutPairRequest:
    request = v2.PutPairRequest(namespace=namespace, key=key, value=value(data))
    if expected is not None:
        request.expected_version = expected
    if ttl is not None:
        request.ttl.CopyFrom(duration_pb2.Duration(seconds=int(ttl), nanos=int(ttl % 1 * 1e9)))
    return request


async def sign_in(svc, login: str | None = None) -> tuple[str, tuple]:
    """A new user: their login and call metadata."""
    login, token = await register_and_login(svc, login)
    return login, bearer(token)


async def succeeds(call):
    """Awaits `call`, which must succeed: a refusal fails the test on an assertion naming
    it, so that a rule broken into a refusal counts as caught (scripts/mutants.py)."""
    try:
        return await call
    except grpc.aio.AioRpcError as error:
        pytest.fail(f"refused: {error.code().name} {reason(error)}: {error.details()}")


@pytest.fixture
async def user(svc):
    return await sign_in(svc)


async def test_a_put_pair_reads_back_with_its_metadata(svc, user):
    login, md = user
    key = unique()
    before = time.time()
    put_response = await svc.kv2.PutPair(put("me", key, {"a": [1, "x"]}), metadata=md)
    got = await svc.kv2.GetPair(v2.GetPairRequest(namespace=login.upper(), key=key), metadata=md)
    assert native(got) == {"a": [1, "x"]}
    assert got.key == key and got.owner == login
    assert got.version == got.create_version == put_response.revision > 0
    assert before - 1 < got.update_time.ToSeconds() <= time.time() + 1
    assert not got.HasField("expire_time")
    second = await svc.kv2.PutPair(put("me", key, "y"), metadata=md)
    got = await svc.kv2.GetPair(v2.GetPairRequest(namespace="me", key=key), metadata=md)
    assert (got.version, got.create_version) == (second.revision, put_response.revision)
    assert native(got) == "y"


async def test_a_namespace_is_named_me_or_by_its_login_in_any_letter_case(svc):
    login, md = await sign_in(svc, unique("Mixed"))  # registered in mixed case
    key = unique()
    written = await succeeds(svc.kv2.PutPair(put("me", key, "mine"), metadata=md))
    for name in ("me", login, login.lower(), login.upper()):
        got = await succeeds(svc.kv2.GetPair(v2.GetPairRequest(namespace=name, key=key), metadata=md))
        assert (native(got), got.version, got.owner) == ("mine", written.revision, login), name
    stored = svc.stack.console(f"box.space.pairs:get({{'{login.lower()}', '{key}'}}) ~= nil")
    assert stored == "true", "not stored under the login in lower case"


async def test_namespaces_are_private_and_the_same_answer_whether_or_not_they_exist(svc, user):
    _, md = user
    other, other_md = await sign_in(svc)
    key = unique()
    await svc.kv2.PutPair(put("me", key, 1), metadata=other_md)
    for namespace in (other, other.lower(), "nobody" + unique()[:8]):
        error = await expect_error(
            svc.kv2.GetPair(v2.GetPairRequest(namespace=namespace, key=key), metadata=md),
            grpc.StatusCode.PERMISSION_DENIED,
        )
        assert reason(error) == "NAMESPACE_DENIED"
        assert error.details() == f"You may not use the namespace {namespace}"


async def test_v1_and_v2_share_the_shared_namespace(svc, user):
    login, md = user
    key = unique()
    await svc.kv.Write(json_format.ParseDict({"data": {key: 5}}, v1.WriteRequest()), metadata=md)
    got = await succeeds(svc.kv2.GetPair(v2.GetPairRequest(namespace="shared", key=key), metadata=md))
    assert native(got) == 5 and got.owner == login
    # A v2 delete frees the key for a v1 write.
    await svc.kv2.DeletePair(v2.DeletePairRequest(namespace="shared", key=key), metadata=md)
    response = await svc.kv.Write(json_format.ParseDict({"data": {key: 6}}, v1.WriteRequest()), metadata=md)
    assert list(response.skipped_keys) == []


async def test_only_the_owner_updates_or_deletes_a_shared_pair_and_nothing_else_changes(svc, user):
    _, md = user
    _, other_md = await sign_in(svc)
    theirs, mine = unique(), unique()
    await svc.kv2.PutPair(put("shared", theirs, "theirs"), metadata=other_md)
    batch = v2.BatchPutPairsRequest(
        namespace="shared",
        pairs=[v2.PairToPut(key=mine, value=value(1)), v2.PairToPut(key=theirs, value=value(2))],
    )
    error = await expect_error(svc.kv2.BatchPutPairs(batch, metadata=md), grpc.StatusCode.PERMISSION_DENIED)
    assert reason(error) == "NOT_OWNER"
    assert error.details() == f"These pairs belong to other users: {theirs}"
    found = await svc.kv2.BatchGetPairs(v2.BatchGetPairsRequest(namespace="shared", keys=[mine, theirs]), metadata=md)
    assert list(found.missing_keys) == [mine]
    assert [native(p) for p in found.pairs] == ["theirs"]
    before = await svc.kv2.GetPair(v2.GetPairRequest(namespace="shared", key=theirs), metadata=md)
    for delete in (
        svc.kv2.DeletePair(v2.DeletePairRequest(namespace="shared", key=theirs), metadata=md),
        svc.kv2.BatchDeletePairs(v2.BatchDeletePairsRequest(namespace="shared", keys=[theirs]), metadata=md),
    ):
        error = await expect_error(delete, grpc.StatusCode.PERMISSION_DENIED)
        assert reason(error) == "NOT_OWNER"
    after = await succeeds(svc.kv2.GetPair(v2.GetPairRequest(namespace="shared", key=theirs), metadata=md))
    assert after == before


async def test_pairs_from_before_v2_have_no_owner_and_cannot_be_changed(svc, user):
    _, md = user
    key = unique()
    meta = "1, 1, '', 0, 0, 1"
    svc.stack.console(f"box.space.pairs:insert({{'', '{key}', 'old', {meta}}})")
    got = await svc.kv2.GetPair(v2.GetPairRequest(namespace="shared", key=key), metadata=md)
    assert got.owner == "" and native(got) == "old"
    await expect_error(svc.kv2.PutPair(put("shared", key, "new"), metadata=md), grpc.StatusCode.PERMISSION_DENIED)


async def test_of_racing_conditional_puts_of_one_version_exactly_one_wins(svc, user):
    _, md = user
    key = unique()
    created = await svc.kv2.PutPair(put("me", key, 0), metadata=md)
    results = await asyncio.gather(
        *(svc.kv2.PutPair(put("me", key, n, expected=created.revision), metadata=md) for n in range(32)),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, v2.PutPairResponse)]
    losers = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(winners) == 1 and len(losers) == 31
    for error in losers:
        assert error.code() == grpc.StatusCode.ABORTED and reason(error) == "VERSION_MISMATCH"
        failure = detail_of(error, error_details_pb2.PreconditionFailure)
        assert [(v.subject, v.description) for v in failure.violations] == [
            (key, f"current version {winners[0].revision} (0 = absent)")
        ]


async def test_a_batch_with_one_failing_condition_changes_nothing(svc, user):
    _, md = user
    a, b = unique(), unique()
    first = await svc.kv2.PutPair(put("me", a, "a1"), metadata=md)
    batch = v2.BatchPutPairsRequest(
        namespace="me",
        pairs=[
            v2.PairToPut(key=a, value=value("a2"), expected_version=first.revision),
            v2.PairToPut(key=b, value=value("b1"), expected_version=first.revision),  # b is absent: 0
        ],
    )
    error = await expect_error(svc.kv2.BatchPutPairs(batch, metadata=md), grpc.StatusCode.ABORTED)
    failure = detail_of(error, error_details_pb2.PreconditionFailure)
    assert [(v.subject, v.description) for v in failure.violations] == [(b, "current version 0 (0 = absent)")]
    found = await svc.kv2.BatchGetPairs(v2.BatchGetPairsRequest(namespace="me", keys=[a, b]), metadata=md)
    assert [native(p) for p in found.pairs] == ["a1"] and list(found.missing_keys) == [b]
    # expected_version 0: create only if absent.
    await svc.kv2.PutPair(put("me", b, "b1", expected=0), metadata=md)
    await expect_error(svc.kv2.PutPair(put("me", b, "b2", expected=0), metadata=md), grpc.StatusCode.ABORTED)


async def test_batch_delete_is_all_or_nothing_and_lists_absent_keys(svc, user):
    _, md = user
    a, b, absent = unique(), unique(), unique()
    written = await svc.kv2.BatchPutPairs(
        v2.BatchPutPairsRequest(namespace="me", pairs=[v2.PairToPut(key=k, value=value(k)) for k in (a, b)]),
        metadata=md,
    )
    wrong = v2.BatchDeletePairsRequest(
        namespace="me",
        # b's version is the revision too: one more is wrong however many writes came before
        # (a fixed 1 was right when this test ran first).
        pairs=[
            v2.KeyToDelete(key=a, expected_version=written.revision),
            v2.KeyToDelete(key=b, expected_version=written.revision + 1),
        ],
    )
    await expect_error(svc.kv2.BatchDeletePairs(wrong, metadata=md), grpc.StatusCode.ABORTED)
    deleted = await svc.kv2.BatchDeletePairs(
        v2.BatchDeletePairsRequest(namespace="me", keys=[a, absent, b]), metadata=md
    )
    assert list(deleted.missing_keys) == [absent] and deleted.revision > written.revision
    error = await expect_error(
        svc.kv2.DeletePair(v2.DeletePairRequest(namespace="me", key=a), metadata=md), grpc.StatusCode.NOT_FOUND
    )
    assert error.details() == f"These keys don't exist: {a}"


async def test_an_expired_pair_is_absent_at_once_and_swept_within_2_s_advancing_the_revision(svc, user):
    _, md = user
    key, later = unique(), unique()
    await svc.kv2.PutPair(put("shared", later, "long", ttl=3600), metadata=md)
    written = await svc.kv2.PutPair(put("shared", key, "short", ttl=1), metadata=md)
    assert written.expire_time.ToSeconds() >= int(time.time())
    got = await succeeds(svc.kv2.GetPair(v2.GetPairRequest(namespace="shared", key=key), metadata=md))
    assert got.expire_time == written.expire_time
    await asyncio.sleep(max(0.0, written.expire_time.ToNanoseconds() / 1e9 - time.time()) + 0.05)
    # Absent at once, for v2 and v1, and a v1 write may create the key again...
    await expect_error(
        svc.kv2.GetPair(v2.GetPairRequest(namespace="shared", key=key), metadata=md), grpc.StatusCode.NOT_FOUND
    )
    await expect_error(svc.kv.Read(v1.ReadRequest(keys=[key]), metadata=md), grpc.StatusCode.NOT_FOUND)
    # ...and the sweep removes it within 2 s, as a write batch of its own.
    deadline = time.monotonic() + 2
    while svc.stack.console(f"box.space.pairs:get({{'', '{key}'}}) ~= nil") == "true":
        assert time.monotonic() < deadline, "not swept within 2 s"
        await asyncio.sleep(0.05)
    # The change log: one row per batch, each event [type, namespace, key, ...].
    change = svc.stack.console(
        f"(function() for _, c in box.space.changes:pairs({{}}, {{iterator = 'REQ'}}) do "
        f"for _, e in ipairs(c.events) do if e[3] == '{key}' then return e[1] .. ' ' .. c.revision end end end end)()"
    )
    kind, revision = change.split()
    assert kind == "EXPIRE" and int(revision) > written.revision
    # The sweep takes only what has expired.
    assert svc.stack.console(f"box.space.pairs:get({{'', '{later}'}}) ~= nil") == "true", "swept before its expiry"
    response = await svc.kv.Write(json_format.ParseDict({"data": {key: 1}}, v1.WriteRequest()), metadata=md)
    assert list(response.skipped_keys) == []


async def test_every_read_takes_an_expired_pair_for_absent_before_any_sweep(svc):
    # The sweep runs every 0.5 s, so a read through the services may come after it. Here an
    # expired pair and a live one are written in a transaction that is never committed: no
    # other fiber (the sweep included) runs before the reads, which are the stored
    # functions kv_svc calls (tkv/api.lua adds only the token check).
    prefix = unique("p")
    expired, live = prefix + "-expired", prefix + "-live"
    answer = svc.stack.console(
        "(function() local kv, now = require('tkv.kv'), require('fiber').time() "
        "box.begin() "
        f"box.space.pairs:insert({{'', '{expired}', 'x', 1, 1, '', now - 10, now - 1, 1}}) "
        f"box.space.pairs:insert({{'', '{live}', 'y', 1, 1, '', now - 10, now + 3600, 1}}) "
        f"local _, found, missing = kv.get('nobody', 'shared', {{'{expired}', '{live}'}}, 1e9) "
        f"local v1, absent = kv.v1_read(nil, {{'{expired}'}}, 1e9, true) "
        f"local _, listed = kv.list('nobody', 'shared', '{prefix}', '', true, 1000, true, 1e9) "
        "local keys = {} for _, t in ipairs(listed) do keys[t[2]] = true end "
        "box.rollback() "
        f"return table.concat({{#found, found[1] and found[1][2] or '-', missing[1] or '-', v1, absent[1] or '-', "
        f"tostring(keys['{expired}'] or false), tostring(keys['{live}'] or false)}}, ' ') end)()"
    )
    assert answer.split() == ["1", live, expired, "missing", expired, "false", "true"], answer


async def test_a_put_without_ttl_clears_an_earlier_one(svc, user):
    _, md = user
    key = unique()
    first = await svc.kv2.PutPair(put("me", key, 1, ttl=1), metadata=md)
    await svc.kv2.PutPair(put("me", key, 2), metadata=md)
    # Until the first put's expiry, as storage set it, has passed.
    await asyncio.sleep(max(0.0, first.expire_time.ToNanoseconds() / 1e9 - time.time()) + 0.05)
    got = await succeeds(svc.kv2.GetPair(v2.GetPairRequest(namespace="me", key=key), metadata=md))
    assert native(got) == 2 and not got.HasField("expire_time")


async def test_pages_list_every_key_exactly_once_while_others_write(svc, user):
    _, md = user
    prefix = unique("p") + "/"
    keys = sorted(f"{prefix}{i:04d}" for i in range(250))
    await svc.kv2.BatchPutPairs(
        v2.BatchPutPairsRequest(namespace="me", pairs=[v2.PairToPut(key=k, value=value(1)) for k in keys]),
        metadata=md,
    )
    # Sorted next to the prefix, before and after it, but outside it.
    outside = [f"{prefix[:-1]}.x", f"{prefix[:-1]}0", unique()]
    await svc.kv2.BatchPutPairs(
        v2.BatchPutPairsRequest(namespace="me", pairs=[v2.PairToPut(key=k, value=value(1)) for k in outside]),
        metadata=md,
    )
    seen, token, pages = [], "", 0
    while True:
        page = await svc.kv2.ListPairs(
            v2.ListPairsRequest(namespace="me", prefix=prefix, page_size=60, page_token=token, keys_only=True),
            metadata=md,
        )
        pages += 1
        assert len(page.pairs) <= 60
        seen += [p.key for p in page.pairs]
        assert all(not p.HasField("value") for p in page.pairs)
        # Another client writes new keys between pages, before and after the cursor.
        await svc.kv2.PutPair(put("me", f"{prefix}zz{pages}", 1), metadata=md)
        await svc.kv2.PutPair(put("me", f"{prefix}0000-{pages}", 1), metadata=md)
        token = page.next_page_token
        if not token:
            break
    assert seen == sorted(seen) and len(seen) == len(set(seen))
    assert set(keys) <= set(seen) and not set(outside) & set(seen)
    assert pages >= 5


async def test_a_list_never_runs_on_into_the_next_namespace(svc):
    login, md = await sign_in(svc)
    # No login sorts between these two (digits sort before letters, and "0" first).
    _, next_md = await sign_in(svc, login + "0")
    await svc.kv2.PutPair(put("me", "mine", 1), metadata=md)
    await svc.kv2.PutPair(put("me", "theirs", 1), metadata=next_md)
    listed = await succeeds(svc.kv2.ListPairs(v2.ListPairsRequest(namespace="me"), metadata=md))
    assert [(p.key, p.owner) for p in listed.pairs] == [("mine", login)]
    assert listed.next_page_token == ""


async def test_a_page_token_altered_or_reused_elsewhere_is_refused(svc, user):
    _, md = user
    prefix = unique("p")
    await svc.kv2.BatchPutPairs(
        v2.BatchPutPairsRequest(
            namespace="me", pairs=[v2.PairToPut(key=f"{prefix}{i}", value=value(i)) for i in range(3)]
        ),
        metadata=md,
    )
    page = await svc.kv2.ListPairs(v2.ListPairsRequest(namespace="me", prefix=prefix, page_size=1), metadata=md)
    token = page.next_page_token
    assert token and len(page.pairs) == 1 and native(page.pairs[0]) == 0
    altered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    for request in (
        v2.ListPairsRequest(namespace="me", prefix=prefix, page_token=altered),
        v2.ListPairsRequest(namespace="me", prefix=prefix + "0", page_token=token),
        v2.ListPairsRequest(namespace="me", prefix=prefix, page_token=token, keys_only=True),
        v2.ListPairsRequest(namespace="shared", prefix=prefix, page_token=token),
        v2.ListPairsRequest(namespace="me", prefix=prefix, page_token="not a token"),
    ):
        error = await expect_error(svc.kv2.ListPairs(request, metadata=md), grpc.StatusCode.INVALID_ARGUMENT)
        assert error.details().startswith("Incorrect page_token: "), error.details()
    rest = await svc.kv2.ListPairs(v2.ListPairsRequest(namespace="me", prefix=prefix, page_token=token), metadata=md)
    assert [native(p) for p in rest.pairs] == [1, 2] and rest.next_page_token == ""


async def test_invalid_requests_name_every_field_and_change_nothing(svc, user):
    _, md = user
    key = unique()
    request = v2.BatchPutPairsRequest(
        namespace="no/such",
        pairs=[
            v2.PairToPut(key="", value=value(1)),
            v2.PairToPut(key=key, value=value(1), expected_version=-2, ttl=duration_pb2.Duration(nanos=5)),
        ],
    )
    error = await expect_error(svc.kv2.BatchPutPairs(request, metadata=md), grpc.StatusCode.INVALID_ARGUMENT)
    assert reason(error) == "INVALID_PAIRS"
    texts = error.details().split("; ")
    assert texts[0].startswith("Incorrect namespace: use me, shared or a login")
    assert "Incorrect keys: a key cannot be empty (pairs[0].key)" in texts
    assert any(t.startswith(f"Incorrect expected_version of the key {key}") for t in texts)
    assert any(t.startswith(f"Incorrect ttl of the key {key}: it should be from 1 to") for t in texts)
    # One bad pair in a batch of good ones: nothing is written.
    good, bad = unique(), unique()
    request = v2.BatchPutPairsRequest(
        namespace="me",
        pairs=[v2.PairToPut(key=good, value=value(1)), v2.PairToPut(key=bad, value=struct_pb2.Value())],
    )
    error = await expect_error(svc.kv2.BatchPutPairs(request, metadata=md), grpc.StatusCode.INVALID_ARGUMENT)
    assert error.details().startswith(f"Incorrect value of the key {bad} (it has no kind set")
    found = await svc.kv2.BatchGetPairs(v2.BatchGetPairsRequest(namespace="me", keys=[good, bad]), metadata=md)
    assert list(found.missing_keys) == [good, bad]


async def test_quotas_count_exactly_and_deleting_frees_them(stack):
    small = await start_services(stack, TKV_KV_QUOTA_PAIRS="3", TKV_KV_QUOTA_BYTES="1000")
    try:
        login, token = await register_and_login(small)
        md = bearer(token)
        keys = [f"q{i}" for i in range(4)]
        await small.kv2.BatchPutPairs(
            v2.BatchPutPairsRequest(namespace="me", pairs=[v2.PairToPut(key=k, value=value(1)) for k in keys[:3]]),
            metadata=md,
        )
        error = await expect_error(
            small.kv2.PutPair(put("me", keys[3], 1), metadata=md), grpc.StatusCode.RESOURCE_EXHAUSTED
        )
        assert reason(error) == "QUOTA_EXCEEDED"
        failure = detail_of(error, error_details_pb2.QuotaFailure)
        assert failure.violations[0].subject == f"user:{login}"
        assert failure.violations[0].description == "3 pairs stored, 1 more would pass the limit of 3"
        # A batch that would pass the quota writes none of its pairs.
        over = v2.BatchPutPairsRequest(
            namespace="me", pairs=[v2.PairToPut(key=k, value=value(1)) for k in ("q0", "new1", "new2")]
        )
        await expect_error(small.kv2.BatchPutPairs(over, metadata=md), grpc.StatusCode.RESOURCE_EXHAUSTED)
        found = await small.kv2.BatchGetPairs(
            v2.BatchGetPairsRequest(namespace="me", keys=["q0", "new1", "new2"]), metadata=md
        )
        assert [native(p) for p in found.pairs] == [1] and list(found.missing_keys) == ["new1", "new2"]
        # Pairs in `shared` count too, through v1 as well.
        error = await expect_error(
            small.kv.Write(json_format.ParseDict({"data": {unique(): 1}}, v1.WriteRequest()), metadata=md),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
        )
        assert reason(error) == "QUOTA_EXCEEDED"
        # Replacing within the quota is fine; deleting frees one pair at once.
        await succeeds(small.kv2.PutPair(put("me", keys[0], 2), metadata=md))
        await small.kv2.DeletePair(v2.DeletePairRequest(namespace="me", key=keys[0]), metadata=md)
        await succeeds(small.kv2.PutPair(put("me", keys[3], 1), metadata=md))
        # Bytes: key + encoded value. 3 pairs use 3 * (2 + 9) = 33 of 1000.
        big = "x" * 1000
        error = await expect_error(
            small.kv2.PutPair(put("me", keys[1], big), metadata=md), grpc.StatusCode.RESOURCE_EXHAUSTED
        )
        assert error.details().startswith(f"The quota of user {login} would be exceeded: ")
        assert (
            detail_of(error, error_details_pb2.QuotaFailure)
            .violations[0]
            .description.endswith("more would pass the limit of 1000")
        )
    finally:
        await stop_services(small)


async def test_answers_over_the_response_limit_are_refused_or_split_into_pages_before_sending(stack):
    # TKV_MAX_RESPONSE_BYTES: storage sums the pairs' stored sizes before answering.
    small = await start_services(stack, TKV_MAX_RESPONSE_BYTES=str(64 * 1024))
    try:
        _, md = await sign_in(small)
        keys = ["big0", "big1", "big2"]
        for key in keys:
            await small.kv2.PutPair(put("me", key, "x" * (40 * 1024)), metadata=md)
        one = await succeeds(small.kv2.GetPair(v2.GetPairRequest(namespace="me", key="big0"), metadata=md))
        assert len(native(one)) == 40 * 1024
        error = await expect_error(
            small.kv2.BatchGetPairs(v2.BatchGetPairsRequest(namespace="me", keys=keys[:2]), metadata=md),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
        )
        assert reason(error) == "RESPONSE_TOO_LARGE", error.details()
        # A list page holds fewer pairs than asked for rather than pass the limit (never none).
        seen, token = [], ""
        for _ in range(len(keys) + 1):
            page = await succeeds(
                small.kv2.ListPairs(
                    v2.ListPairsRequest(namespace="me", prefix="big", page_size=10, page_token=token), metadata=md
                )
            )
            assert len(page.pairs) == 1, [p.key for p in page.pairs]
            seen += [p.key for p in page.pairs]
            token = page.next_page_token
            if not token:
                break
        assert seen == keys
    finally:
        await stop_services(small)


async def test_a_full_store_refuses_pair_writes_but_accounts_logins_and_deletes_work(stack, svc):
    _, md = await sign_in(svc)
    key = unique()
    await svc.kv2.PutPair(put("me", key, "x" * 1000), metadata=md)
    # The integration Tarantool holds 256 MiB; 1 % of it is passed once ~3 MB are stored.
    used = float(svc.stack.console("box.slab.info().arena_used / box.slab.info().quota_size"))
    if used < 0.011:
        filler = "y" * 100_000
        await svc.kv2.BatchPutPairs(
            v2.BatchPutPairsRequest(
                namespace="me", pairs=[v2.PairToPut(key=f"fill{i}", value=value(filler)) for i in range(30)]
            ),
            metadata=md,
        )
    full = await start_services(stack, TKV_KV_STORAGE_HIGH_WATER_PERCENT="1")
    try:
        for call in (
            full.kv2.PutPair(put("me", unique(), 1), metadata=md),
            full.kv.Write(json_format.ParseDict({"data": {unique(): 1}}, v1.WriteRequest()), metadata=md),
        ):
            error = await expect_error(call, grpc.StatusCode.RESOURCE_EXHAUSTED)
            assert (reason(error), error.details()) == ("STORAGE_FULL", "storage is full")
        # Accounts, logins, logouts, reads and deletes still work.
        _, other_token = await register_and_login(full)
        await full.auth.Logout(
            __import__("tkv.auth.v1.auth_pb2", fromlist=["x"]).LogoutRequest(), metadata=bearer(other_token)
        )
        await full.kv2.GetPair(v2.GetPairRequest(namespace="me", key=key), metadata=md)
        await full.kv2.DeletePair(v2.DeletePairRequest(namespace="me", key=key), metadata=md)
    finally:
        await stop_services(full)
        await svc.kv2.BatchDeletePairs(
            v2.BatchDeletePairsRequest(namespace="me", keys=[f"fill{i}" for i in range(30)]), metadata=md
        )


async def test_the_change_log_is_one_row_per_batch_and_trimmed_by_count(svc, user):
    _, md = user
    before = int(svc.stack.console("box.space.changes:len()"))
    for _ in range(3):
        await svc.kv2.BatchPutPairs(
            v2.BatchPutPairsRequest(
                namespace="me", pairs=[v2.PairToPut(key=unique(), value=value(1)) for _ in range(5)]
            ),
            metadata=md,
        )
    assert int(svc.stack.console("box.space.changes:len()")) == before + 3
    counted = "(function() local n = 0 for _, c in box.space.changes:pairs() do n = n + c.count end return n end)()"
    held = int(svc.stack.console("box.space.counters:get('changes').value"))
    assert held == int(svc.stack.console(counted))
    # Trimmed to at most 7 changes: whole batches go, oldest first, and the count follows.
    svc.stack.console("require('tkv.expiry').trim_changes(3600, 7)")
    held = int(svc.stack.console("box.space.counters:get('changes').value"))
    assert held == int(svc.stack.console(counted)) and 5 <= held <= 7


async def test_single_pair_calls_name_their_own_fields(svc, user):
    _, md = user
    request = put("me", "", 1, expected=-1, ttl=0.5)
    error = await expect_error(svc.kv2.PutPair(request, metadata=md), grpc.StatusCode.INVALID_ARGUMENT)
    fields = [field for field, _ in details(error)[1]]
    assert fields == ["key", "expected_version", "ttl"]
    error = await expect_error(
        svc.kv2.DeletePair(v2.DeletePairRequest(namespace="me", key="", expected_version=-1), metadata=md),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert [field for field, _ in details(error)[1]] == [
        "key",
        "expected_version",
    ]
