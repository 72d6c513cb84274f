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
    # Function rights, derived from tarantool/tkv/api.lua's exports at every start (tarantool/tkv/rights.lua).
    Mutant(
        "kv_svc's user may call an accounts function",
        "tarantool/tkv/rights.lua",
        "    {prefix = 'auth_', users = {'tkv_auth'}},",
        "    {prefix = 'auth_', users = {'tkv_auth', 'tkv_kv'}},",
        (
            "tests/security/test_storage_access.py::test_every_api_export_is_granted_to_its_service_user_and_no_other",
            "tests/security/test_storage_access.py::test_each_service_user_may_call_only_its_own_functions",
        ),
    ),
    Mutant(
        "auth_svc's user may call the store's figures",
        "tarantool/tkv/rights.lua",
        "    storage_stats = {'tkv_kv'},",
        "    storage_stats = {'tkv_kv', 'tkv_auth'},",
        ("tests/security/test_storage_access.py::test_every_api_export_is_granted_to_its_service_user_and_no_other",),
    ),
    Mutant(
        "service users may read the spaces",
        "tarantool/tkv/rights.lua",
        "                    box.schema.user.grant(user, 'execute', 'function', name, {if_not_exists = true})\n",
        "                    box.schema.user.grant(user, 'execute', 'function', name, {if_not_exists = true})\n"
        "                    box.schema.user.grant(user, 'read', 'space', 'users', {if_not_exists = true})\n",
        ("tests/security/test_storage_access.py::test_each_service_user_may_call_only_its_own_functions",),
    ),
    Mutant(
        "function rights are made once, like a migration",
        "tarantool/init.lua",
        "    rights.apply(function_rights, schema.SERVICE_USERS)",
        "    box.once('tkv:rights', rights.apply, function_rights, schema.SERVICE_USERS)",
        (
            "tests/security/test_storage_access.py::"
            "test_a_new_export_is_granted_and_a_removed_one_dropped_at_the_next_start_with_no_migration",
        ),
    ),
    Mutant(
        "a function no longer exported stays",
        "tarantool/tkv/rights.lua",
        "        if wanted[name] == nil then\n            box.schema.func.drop(name)",
        "        if false then\n            box.schema.func.drop(name)",
        (
            "tests/security/test_storage_access.py::"
            "test_a_new_export_is_granted_and_a_removed_one_dropped_at_the_next_start_with_no_migration",
            "tests/security/test_storage_access.py::test_every_api_export_is_granted_to_its_service_user_and_no_other",
        ),
    ),
    Mutant(
        "a grant the rule no longer gives is kept",
        "tarantool/tkv/rights.lua",
        "            if not may[name] then",
        "            if false then",
        (
            "tests/security/test_storage_access.py::"
            "test_a_new_export_is_granted_and_a_removed_one_dropped_at_the_next_start_with_no_migration",
        ),
    ),
    Mutant(
        "an export without a service prefix is granted to both services",
        "tarantool/tkv/rights.lua",
        "    local users = UNPREFIXED[name]\n",
        "    local users = UNPREFIXED[name] or {'tkv_auth', 'tkv_kv'}\n",
        (
            "tests/security/test_storage_access.py::"
            "test_an_export_the_rule_does_not_name_stops_the_start_before_any_file_is_written",
        ),
    ),
    Mutant(
        "an export runs with its caller's rights",
        "tarantool/tkv/rights.lua",
        "        box.schema.func.create(name, {setuid = true})",
        "        box.schema.func.create(name, {setuid = false})",
        ("tests/security/test_storage_access.py::test_every_api_export_is_granted_to_its_service_user_and_no_other",),
    ),
    Mutant(
        "every start drops and makes every function again",
        "tarantool/tkv/rights.lua",
        "    if existing ~= nil and existing.setuid ~= 1 then",
        "    if existing ~= nil then",
        ("tests/security/test_storage_access.py::test_every_api_export_is_granted_to_its_service_user_and_no_other",),
    ),
    # The one access check of pairs and watches (tarantool/tkv/access.lua).
    Mutant(
        "a namespace nobody granted is open like the caller's own",
        "tarantool/tkv/access.lua",
        "        return nil, {'denied', ns_name}",
        "        return ns",
        (
            "tests/integration/test_watch.py::test_watching_needs_access_like_listing",
            "tests/integration/test_sharing.py::test_revoking_takes_effect_for_the_very_next_call",
        ),
    ),
    Mutant(
        "an open watch outlives the grant it needed",
        "tarantool/tkv/access.lua",
        "    return access == true or (access ~= nil and covers(access, target, false))",
        "    return true",
        ("tests/integration/test_watch.py::test_a_revoked_grant_ends_the_grantees_watch_and_refuses_their_next_call",),
    ),
]
