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
    Mutant(
        "a candidate that heard from too few replicas leads",
        "tkv_ha/decision.py",
        "    if known < needed:",
        "    if False:",
        ("tests/unit/test_ha_decision.py::test_a_replica_that_hears_from_no_other_may_not_lead",),
    ),
    Mutant(
        "the old leader's unconfirmed rows hold a candidate back",
        "tkv_ha/decision.py",
        "if name != previous_leader and state is not None}",
        "if state is not None}",
        ("tests/unit/test_ha_decision.py::test_the_old_leaders_own_rows_do_not_count",),
    ),
    Mutant(
        "a node of another replica set may lead",
        "tkv_ha/decision.py",
        "    if replicaset is not None and me.replicaset != replicaset:",
        "    if False:",
        ("tests/unit/test_ha_decision.py::test_a_node_of_another_replica_set_never_leads",),
    ),
    Mutant(
        "a node with rows the leader lacks follows it instead of being rebuilt",
        "tkv_ha/decision.py",
        "    return ahead_of(me, leader)",
        "    return []",
        ("tests/unit/test_ha_decision.py::test_a_node_with_rows_the_leader_lacks_has_diverged",),
    ),
    Mutant(
        "a leader past its deadline keeps leading",
        "tkv_ha/agent.py",
        "        if time.monotonic() >= self._valid_until:",
        "        if False:",
        ("tests/unit/test_ha_agent.py::test_a_leader_that_cannot_renew_in_time_steps_down",),
    ),
    Mutant(
        "a hung node's lease is revoked before its deadline",
        "tkv_ha/agent.py",
        "                safe = error.down",
        "                safe = True",
        ("tests/unit/test_ha_agent.py::test_a_hung_node_keeps_the_lease_until_it_expires",),
    ),
    Mutant(
        "a dead node's lease is left to expire",
        "tkv_ha/agent.py",
        "        if lease is not None and safe:",
        "        if False:",
        ("tests/unit/test_ha_agent.py::test_a_dead_node_gives_the_lease_up_at_once",),
    ),
    Mutant(
        "a restarted agent lets its old key go before its node is read-only",
        "tkv_ha/agent.py",
        '                if state is not None and await self.node.demote("the agent restarted"):\n'
        "                    with contextlib.suppress(EtcdUnavailable):\n"
        "                        await self.etcd.revoke(leader_kv.lease)\n",
        "                with contextlib.suppress(EtcdUnavailable):\n"
        "                    await self.etcd.revoke(leader_kv.lease)\n"
        "                if state is not None:\n"
        '                    await self.node.demote("the agent restarted")\n',
        ("tests/unit/test_ha_agent.py::test_a_restarted_agent_demotes_its_node_before_letting_its_old_key_go",),
    ),
    Mutant(
        "maintenance mode does not pause failover",
        "tkv_ha/agent.py",
        "        if keys.maintenance in everything:\n            self._say(",
        "        if False:\n            self._say(",
        ("tests/ha/test_operator.py::test_maintenance_mode_pauses_failover_until_it_is_turned_off",),
    ),
    Mutant(
        "reads go to the old leader though etcd names a new one",
        "tkv_common/tarantool.py",
        "        if node is None or not node.is_connected or self._new_leader_elsewhere:",
        "        if node is None or not node.is_connected:",
        ("tests/integration/test_read_fallback.py",),
    ),
    Mutant(
        "health forgets the reads a leaderless replica set still serves",
        "tkv_common/tarantool.py",
        "        return self.is_connected or self._read_fallback() is not None",
        "        return self.is_connected",
        ("tests/integration/test_read_fallback.py",),
    ),
    Mutant(
        "a switchover releases while the old leader's queue still confirms",
        "tkv_ha/agent.py",
        "            if theirs is not None and mine.queue_settled and not decision.ahead_of(mine, theirs):",
        "            if theirs is not None and not decision.ahead_of(mine, theirs):",
        ("tests/unit/test_ha_agent.py::test_a_switchover_waits_until_the_old_leaders_queue_has_settled",),
    ),
    Mutant(
        "a demoted leader says its kept queue is settled while a write still waits in it",
        "tarantool/tkv/ha.lua",
        "            pcall(barrier.replace, barrier, {1})\n",
        # What it did before: on the queue's owner, Tarantool 2.6.0 returns from this at once.
        "            box.ctl.clear_synchro_queue()\n",
        ("tests/ha/test_kept_queue.py",),
    ),
    Mutant(
        "a lease that expired before the leader key was written crashes the agent's round",
        "tkv_ha/agent.py",
        "        except EtcdRejected as error:",
        "        except EtcdUnavailable as error:",
        ("tests/unit/test_ha_agent.py::test_a_lease_that_expires_before_the_leader_key_is_written_takes_nothing",),
    ),
]
