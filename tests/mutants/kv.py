"""Pairs, values and sharing: kv_svc and tarantool/tkv/kv.lua."""

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
        "tarantool/tkv/kv.lua",
        "and key:sub(1, #prefix) == prefix then",
        "then",
        ("tests/integration/test_sharing.py::test_a_prefix_reader_reads_lists_and_watches_only_under_the_prefix",),
    ),
    Mutant(
        "a READER may write",
        "tarantool/tkv/kv.lua",
        "if (not writing or grant[4] == 'WRITER') and",
        "if",
        ("tests/integration/test_sharing.py::test_a_prefix_reader_reads_lists_and_watches_only_under_the_prefix",),
    ),
]
