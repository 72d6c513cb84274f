"""Pairs, values and sharing: kv_svc and tarantool/tkv/ (kv.lua, access.lua, store.lua,
sharing.lua, expiry.lua)."""

from tests.mutants.mutant import Mutant

MUTANTS = [
    Mutant(
        "write batch without a transaction",
        "tarantool/tkv/kv.lua",
        "    box.atomic(function()\n        local revision, events = next_revision(), {}\n"
        "        for _, write in ipairs(writes) do",
        # A plain call instead (a statement may not start with "(" in Lua: ambiguous syntax).
        "    local run = function(f) f() end\n    run(function()\n"
        "        local revision, events = next_revision(), {}\n"
        "        for _, write in ipairs(writes) do",
        ("tests/integration/test_storage_faults.py::test_a_failure_inside_the_batch_rolls_back_every_pair",),
    ),
    Mutant(
        "stored booleans read as numbers",
        "kv_svc/values.py",
        "        target.bool_value = native",
        "        target.number_value = native",
        ("tests/unit/test_values.py",),
    ),
    Mutant(
        "a value's byte-level proof forgets nested values without a kind",
        "kv_svc/values.py",
        'if not stored or b"\\x0a\\x00" in stored or b"\\x12\\x00" in stored:',
        "if not stored:",
        ("tests/unit/test_values.py",),
    ),
    Mutant(
        "a value's byte-level proof forgets the depth of long values",
        "kv_svc/values.py",
        'return stored.count(b"\\x2a") + stored.count(b"\\x32") > max_depth',
        "return False",
        ("tests/unit/test_values.py",),
    ),
    Mutant(
        "a grant covers keys outside its prefix",
        "tarantool/tkv/access.lua",
        "and key:sub(1, #prefix) == prefix then",
        "then",
        ("tests/integration/test_sharing.py::test_a_prefix_reader_reads_lists_and_watches_only_under_the_prefix",),
    ),
    Mutant(
        "a READER may write",
        "tarantool/tkv/access.lua",
        "if (not writing or grant[4] == 'WRITER') and",
        "if",
        ("tests/integration/test_sharing.py::test_a_prefix_reader_reads_lists_and_watches_only_under_the_prefix",),
    ),
    # Namespaces (docs/api.md, "Namespaces").
    Mutant(
        "a grant to one user opens the namespace to every user",
        "tarantool/tkv/access.lua",
        "local held = box.space.grants:select({ns, caller})",
        "local held = box.space.grants:select({ns})",
        ("tests/integration/test_sharing.py::test_a_writer_of_a_prefix_writes_under_it_and_nowhere_else",),
    ),
    Mutant(
        "`me` names the namespace in the caller's letter case",
        "tarantool/tkv/access.lua",
        "    elseif name == 'me' then\n        return caller:lower()\n",
        "    elseif name == 'me' then\n        return caller\n",
        ("tests/integration/test_pairs_v2.py::test_a_namespace_is_named_me_or_by_its_login_in_any_letter_case",),
    ),
    Mutant(
        "a namespace's name is case-sensitive",
        "tarantool/tkv/access.lua",
        "    return name:lower()\nend",
        "    return name\nend",
        ("tests/integration/test_pairs_v2.py::test_a_namespace_is_named_me_or_by_its_login_in_any_letter_case",),
    ),
    Mutant(
        "v2's `shared` is not v1's store",
        "tarantool/tkv/access.lua",
        "    if name == 'shared' then\n        return M.SHARED\n",
        "    if name == 'shared' then\n        return name\n",
        ("tests/integration/test_pairs_v2.py::test_v1_and_v2_share_the_shared_namespace",),
    ),
    Mutant(
        "a list runs on into the next namespace",
        "tarantool/tkv/kv.lua",
        "if tuple[1] ~= ns or key:sub(1, #prefix) ~= prefix then",
        "if key:sub(1, #prefix) ~= prefix then",
        ("tests/integration/test_pairs_v2.py::test_a_list_never_runs_on_into_the_next_namespace",),
    ),
    # Ownership in `shared`.
    Mutant(
        "anyone updates a shared pair (NOT_OWNER on put)",
        "tarantool/tkv/kv.lua",
        "        if live and ns == SHARED and old[OWNER] ~= caller then\n"
        "            table.insert(not_owned, key)\n        end\n",
        "",
        (
            "tests/integration/test_pairs_v2.py::test_only_the_owner_updates_or_deletes_a_shared_pair_and_nothing_else_changes",
        ),
    ),
    Mutant(
        "anyone deletes a shared pair (NOT_OWNER on delete)",
        "tarantool/tkv/kv.lua",
        "        elseif ns == SHARED and old[OWNER] ~= caller then\n            table.insert(not_owned, key)\n",
        "",
        (
            "tests/integration/test_pairs_v2.py::test_only_the_owner_updates_or_deletes_a_shared_pair_and_nothing_else_changes",
        ),
    ),
    # Versions (compare-and-set).
    Mutant(
        "a put's expected_version is never checked",
        "tarantool/tkv/kv.lua",
        "            table.insert(mismatches, {key, current})\n        end\n        local size = pair_size(key, blob)",
        "        end\n        local size = pair_size(key, blob)",
        (
            "tests/integration/test_pairs_v2.py::test_of_racing_conditional_puts_of_one_version_exactly_one_wins",
            "tests/integration/test_pairs_v2.py::test_a_batch_with_one_failing_condition_changes_nothing",
        ),
    ),
    Mutant(
        "a delete's expected_version is never checked",
        "tarantool/tkv/kv.lua",
        "        if expected ~= NO_CONDITION and expected ~= current then\n"
        "            table.insert(mismatches, {key, current})\n        elseif not live then",
        "        if false then\n            table.insert(mismatches, {key, current})\n        elseif not live then",
        ("tests/integration/test_pairs_v2.py::test_batch_delete_is_all_or_nothing_and_lists_absent_keys",),
    ),
    Mutant(
        "a v1 write overwrites existing keys",
        "tarantool/tkv/kv.lua",
        "        if is_live(old, now) then\n            table.insert(skipped, key)",
        "        if false then\n            table.insert(skipped, key)",
        ("tests/integration/test_pairs.py::test_write_skips_existing_keys_and_reports_them_in_request_order",),
    ),
    # Transactions of v2 (v1's is "write batch without a transaction" above).
    Mutant(
        "a v2 put batch without a transaction",
        "tarantool/tkv/kv.lua",
        "    box.atomic(function()\n        revision = next_revision()\n        local events = {}\n"
        "        for i, item in ipairs(items) do",
        "    local run = function(f) f() end\n    run(function()\n        revision = next_revision()\n"
        "        local events = {}\n        for i, item in ipairs(items) do",
        ("tests/integration/test_storage_faults.py::test_a_failure_inside_a_v2_put_or_delete_rolls_back_every_pair",),
    ),
    Mutant(
        "a v2 delete batch without a transaction",
        "tarantool/tkv/kv.lua",
        "    box.atomic(function()\n        revision = next_revision()\n        local events = {}\n"
        "        for _, old in ipairs(doomed) do",
        "    local run = function(f) f() end\n    run(function()\n        revision = next_revision()\n"
        "        local events = {}\n        for _, old in ipairs(doomed) do",
        ("tests/integration/test_storage_faults.py::test_a_failure_inside_a_v2_put_or_delete_rolls_back_every_pair",),
    ),
    # Expiry.
    Mutant(
        "an expired pair reads as live until swept",
        "tarantool/tkv/store.lua",
        "    return expire_time == 0 or expire_time > now",
        "    return true",
        ("tests/integration/test_pairs_v2.py::test_every_read_takes_an_expired_pair_for_absent_before_any_sweep",),
    ),
    Mutant(
        "a put without ttl keeps the earlier expiry",
        "tarantool/tkv/kv.lua",
        "local expire_time = ttl > 0 and now + ttl or 0",
        "local expire_time = ttl > 0 and now + ttl or (old and old[EXPIRE_TIME] or 0)",
        ("tests/integration/test_pairs_v2.py::test_a_put_without_ttl_clears_an_earlier_one",),
    ),
    Mutant(
        "expired pairs are never swept",
        "tarantool/tkv/housekeeping.lua",
        "                    while expiry.sweep_expired(EXPIRY_BATCH) == EXPIRY_BATCH do\n"
        "                        fiber.yield()\n                    end\n",
        "",
        (
            "tests/integration/test_pairs_v2.py::"
            "test_an_expired_pair_is_absent_at_once_and_swept_within_2_s_advancing_the_revision",
        ),
    ),
    Mutant(
        "the sweep takes pairs before they expire",
        "tarantool/tkv/expiry.lua",
        "if tuple[EXPIRE_TIME] > now or #expired >= batch then",
        "if #expired >= batch then",
        (
            "tests/integration/test_pairs_v2.py::"
            "test_an_expired_pair_is_absent_at_once_and_swept_within_2_s_advancing_the_revision",
        ),
    ),
    # Quotas and storage full (docs/api.md, "Quotas and storage full").
    Mutant(
        "the pairs quota ignores the pairs being added",
        "tarantool/tkv/store.lua",
        "used_pairs + delta.pairs > limits.max_pairs",
        "used_pairs > limits.max_pairs",
        ("tests/integration/test_pairs_v2.py::test_quotas_count_exactly_and_deleting_frees_them",),
    ),
    Mutant(
        "the bytes quota ignores the bytes being added",
        "tarantool/tkv/store.lua",
        "used_bytes + delta.bytes > limits.max_bytes",
        "used_bytes > limits.max_bytes",
        ("tests/integration/test_pairs_v2.py::test_quotas_count_exactly_and_deleting_frees_them",),
    ),
    Mutant(
        "a delete does not free quota",
        "tarantool/tkv/kv.lua",
        "            space:delete({ns, old[2]})\n            add_usage(old[OWNER], -1, -old[SIZE])\n",
        "            space:delete({ns, old[2]})\n",
        ("tests/integration/test_pairs_v2.py::test_quotas_count_exactly_and_deleting_frees_them",),
    ),
    Mutant(
        "the sweep does not free quota",
        "tarantool/tkv/expiry.lua",
        "            box.space.pairs:delete({old[1], old[2]})\n"
        "            store.add_usage(old[OWNER], -1, -old[SIZE])\n",
        "            box.space.pairs:delete({old[1], old[2]})\n",
        ("tests/integration/test_pairs_quotas.py::test_an_expired_pair_frees_its_owners_quota_when_swept",),
    ),
    Mutant(
        "a grantee's creations count against the namespace owner's quota",
        "tarantool/tkv/kv.lua",
        "            charge(deltas, caller, 1, size)",
        "            charge(deltas, ns == M.SHARED and caller or ns, 1, size)",
        (
            "tests/integration/test_pairs_quotas.py::"
            "test_a_grantees_creations_count_against_the_grantees_quota_not_the_owners",
        ),
    ),
    Mutant(
        "storage full ignores the high-water mark",
        "tarantool/tkv/store.lua",
        "return slab.arena_used >= high_water * slab.quota_size",
        "return slab.arena_used >= slab.quota_size",
        (
            "tests/integration/test_pairs_v2.py::"
            "test_a_full_store_refuses_pair_writes_but_accounts_logins_and_deletes_work",
        ),
    ),
    # Lists and answer sizes.
    Mutant(
        "a list runs past its prefix",
        "tarantool/tkv/kv.lua",
        "if tuple[1] ~= ns or key:sub(1, #prefix) ~= prefix then",
        "if tuple[1] ~= ns then",
        (
            "tests/integration/test_pairs_v2.py::test_pages_list_every_key_exactly_once_while_others_write",
            "tests/integration/test_sharing.py::test_a_prefix_reader_reads_lists_and_watches_only_under_the_prefix",
        ),
    ),
    Mutant(
        "a full page does not say that more follow",
        "tarantool/tkv/kv.lua",
        "                more = true\n                break",
        "                break",
        ("tests/integration/test_pairs_v2.py::test_pages_list_every_key_exactly_once_while_others_write",),
    ),
    Mutant(
        "a page holds one pair more than its size",
        "tarantool/tkv/kv.lua",
        "if #found >= limit or",
        "if #found > limit or",
        ("tests/integration/test_pairs_v2.py::test_pages_list_every_key_exactly_once_while_others_write",),
    ),
    Mutant(
        "a v1 read builds an answer over the response limit",
        "tarantool/tkv/kv.lua",
        "    if size > max_bytes then\n        return 'too_large', size, max_bytes\n    end\n    if values_only then",
        "    if values_only then",
        ("tests/integration/test_pairs.py::test_storage_refuses_a_v1_answer_over_the_limit_before_sending_it",),
    ),
    Mutant(
        "a get builds an answer over the response limit",
        "tarantool/tkv/kv.lua",
        "    if size > max_bytes then\n        return 'too_large', size, max_bytes\n    end\n"
        "    return 'ok', found, missing",
        "    return 'ok', found, missing",
        (
            "tests/integration/test_pairs_v2.py::"
            "test_answers_over_the_response_limit_are_refused_or_split_into_pages_before_sending",
        ),
    ),
    Mutant(
        "a list page ignores the response limit",
        "tarantool/tkv/kv.lua",
        "if #found >= limit or (#found > 0 and size + item_size > max_bytes) then",
        "if #found >= limit then",
        (
            "tests/integration/test_pairs_v2.py::"
            "test_answers_over_the_response_limit_are_refused_or_split_into_pages_before_sending",
        ),
    ),
]
