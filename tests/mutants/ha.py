"""High availability (tkv_ha/, tarantool/tkv/ha.lua): the history checker of tests/ha must
catch each (the tests assert its verdict first)."""

from tests.mutants.mutant import Mutant

MUTANTS = [
    Mutant(
        "failover promotes without the lag check",
        "tkv_ha/agent.py",
        "        if not verdict.ok:\n",
        "        if False:\n",
        ("tests/ha/test_failover.py::test_a_replica_missing_confirmed_writes_never_leads",),
    ),
    Mutant(
        "a node whose agent stops renewing does not fence itself (its own deadline)",
        "tarantool/tkv/ha.lua",
        "                fence('the agent did not renew leadership in time')\n",
        "                writable_until = nil\n",
        ("tests/ha/test_failover.py::test_a_leader_whose_agent_hangs_fences_itself_before_anyone_else_leads",),
    ),
    Mutant(
        "a leader that cannot renew its lease does not fence its node",
        "tarantool/tkv/ha.lua",
        "        box.cfg({read_only = true})\n        log.warn('tkv ha: fenced (read-only): %s', why)",
        "        log.warn('tkv ha: fenced (read-only): %s', why)",
        ("tests/ha/test_failover.py::test_a_partitioned_master_fences_itself_and_comes_back_as_a_replica",),
    ),
]
