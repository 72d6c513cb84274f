"""Watch streams: kv_svc/watching.py and tarantool/tkv/watch.lua."""

from tests.mutants.mutant import Mutant

MUTANTS = [
    Mutant(
        "a revoked grant leaves open watches running",
        "tarantool/tkv/kv.lua",
        "        return 'no_grant', grantee, prefix\n    end\n    watch.access_changed()",
        "        return 'no_grant', grantee, prefix\n    end",
        ("tests/integration/test_watch.py::test_a_revoked_grant_ends_the_grantees_watch_and_refuses_their_next_call",),
    ),
    Mutant(
        "watch history starts after the first message went out",
        "kv_svc/watching.py",
        "        after = watch.sent\n        yield watch_response((), after)",
        "        yield watch_response((), watch.sent)\n        after = watch.sent",
        ("tests/reliability/test_watch_history.py",),
    ),
]
