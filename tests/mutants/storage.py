"""Storage and operations: tarantool/init.lua, replication, housekeeping, backup."""

from tests.mutants.mutant import Mutant

MUTANTS = [
    Mutant(
        "Tarantool listens before its migrations",
        "tarantool/init.lua",
        "    work_dir = settings.work_dir,\n",
        "    work_dir = settings.work_dir,\n    listen = settings.listen,\n",
        ("tests/security/test_storage_access.py::test_the_listener_opens_only_once_the_schema_and_functions_exist",),
    ),
    Mutant(
        "synchronous replication off",
        "tarantool/init.lua",
        "    schema.set_sync(settings.synchro_quorum > 1)",
        "    schema.set_sync(false)",
        ("tests/reliability/test_replication.py::test_sync_mode_acknowledges_a_write_only_once_the_replica_has_it",),
    ),
    Mutant(
        "expired revocations never purged",
        "tarantool/tkv/housekeeping.lua",
        "                purge('expired revocations', revocations.purge_expired, now)\n",
        "",
        ("tests/integration/test_housekeeping.py",),
    ),
    Mutant(
        "backup without a fresh snapshot",
        "scripts/backup.py",
        '        console.run("box.snapshot()")\n',
        "",
        (
            "tests/reliability/test_backup.py::"
            "test_the_backup_command_under_load_restores_exactly_what_was_acknowledged_before_it",
        ),
    ),
    Mutant(
        "services stay on the first Tarantool node",
        "tkv_common/tarantool.py",
        "        return not read_only",
        "        return node is self._nodes[0]",
        ("tests/reliability/test_replication.py::test_failover_to_the_replica",),
    ),
    Mutant(
        "kv_svc's user may call an accounts function",
        "tarantool/tkv/schema.lua",
        "    tkv_kv = {'tkv.node_status'},",
        "    tkv_kv = {'tkv.node_status', 'tkv.auth_credentials'},",
        ("tests/security/test_storage_access.py::test_each_service_user_may_call_only_its_own_functions",),
    ),
    Mutant(
        "service users may read the spaces",
        "tarantool/tkv/schema.lua",
        "            box.schema.user.grant(user, 'execute', 'function', name, {if_not_exists = true})\n",
        "            box.schema.user.grant(user, 'execute', 'function', name, {if_not_exists = true})\n"
        "            box.schema.user.grant(user, 'read', 'space', 'users', {if_not_exists = true})\n",
        ("tests/security/test_storage_access.py::test_each_service_user_may_call_only_its_own_functions",),
    ),
]
