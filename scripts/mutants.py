"""Breaks one guarantee at a time and runs the tests that claim it: each must fail.

`make mutants`. For every mutant below, the work tree is copied to a temporary directory,
one exact piece of text is replaced in one file, and the named tests run there; the
mutant is "killed" when they fail (pytest exit code 1). A control run on an unmutated copy
must pass first, so a kill is the mutation's doing. A mutant that survives means a test
that would stay green with its property gone: the script then exits 1.

    python scripts/mutants.py            # every mutant
    python scripts/mutants.py -k sync    # those whose name contains "sync"
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What a copy leaves out: state, caches and installed tools (the venv is shared).
NOT_COPIED = shutil.ignore_patterns(
    ".git", ".venv", "var", "node_modules", "__pycache__", ".pytest_cache", ".hypothesis"
)


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


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
        "health never reports NOT_SERVING",
        "tkv_common/server.py",
        "status = health_pb2.HealthCheckResponse.SERVING if now else health_pb2.HealthCheckResponse.NOT_SERVING",
        "status = health_pb2.HealthCheckResponse.SERVING",
        ("tests/service/test_interceptor_chain.py::test_health_follows_the_storage_connection",),
    ),
    Mutant(
        "health never returns to SERVING",
        "tkv_common/server.py",
        "status = health_pb2.HealthCheckResponse.SERVING if now else health_pb2.HealthCheckResponse.NOT_SERVING",
        "status = health_pb2.HealthCheckResponse.SERVING if now and serving is None"
        " else health_pb2.HealthCheckResponse.NOT_SERVING",
        ("tests/service/test_interceptor_chain.py::test_health_follows_the_storage_connection",),
    ),
    Mutant(
        "no NOT_SERVING before a shutdown",
        "tkv_common/server.py",
        "        await self.health.enter_graceful_shutdown()\n",
        "",
        ("tests/reliability/test_shutdown.py::test_sigterm_reports_not_serving_before_the_process_stops",),
    ),
    Mutant(
        "token typ not checked",
        "tkv_common/tokens.py",
        '            or str(header.get("typ", "")).lower() not in (TOKEN_TYPE, f"application/{TOKEN_TYPE}")\n',
        "",
        ("tests/unit/test_tokens.py",),
    ),
    Mutant(
        "token size not capped",
        "tkv_common/tokens.py",
        "        if len(token) > MAX_TOKEN_BYTES:",
        "        if False:",
        ("tests/unit/test_tokens.py",),
    ),
    Mutant(
        "revocation not checked",
        "tarantool/tkv/api.lua",
        "    if revocations.is_revoked(jti) then",
        "    if false then",
        ("tests/security/test_token_attacks.py::test_a_revoked_token_is_rejected_by_every_rpc",),
    ),
    Mutant(
        "login lock not checked",
        "tarantool/tkv/api.lua",
        "    local wait = logins.wait(login, client, now, limits)\n    if wait ~= nil then",
        "    local wait = logins.wait(login, client, now, limits)\n    if false then",
        ("tests/security/test_login_throttling.py",),
    ),
    Mutant(
        "a direct client's x-forwarded-for believed",
        "auth_svc/client_address.py",
        "    trusted_peer = ip is None or any(",
        "    trusted_peer = True or any(",
        ("tests/security/test_login_throttling.py::test_a_direct_clients_x_forwarded_for_is_not_believed",),
    ),
    Mutant(
        "login locks per login only",
        "auth_svc/servicer.py",
        "        return client_of(context.peer(), forwarded, self._trusted_proxies)",
        '        return "everyone"',
        (
            "tests/security/test_login_throttling.py::"
            "test_an_attacker_hammering_a_login_locks_out_only_their_own_address",
        ),
    ),
    Mutant(
        "a wrong password accepted",
        "auth_svc/users.py",
        "        if account is None or not verified:",
        "        if account is None:",
        ("tests/security/test_passwords.py::test_unknown_login_and_wrong_password_take_the_same_time",),
    ),
    Mutant(
        "no decoy hash for an unknown login",
        "auth_svc/users.py",
        '        verified = await self._hasher.verify(password if plausible else "", candidate)',
        "        verified = candidate is not None and await self._hasher.verify(password, candidate)",
        ("tests/security/test_passwords.py::test_unknown_login_and_wrong_password_take_the_same_time",),
    ),
    Mutant(
        "Register not rate-limited",
        "envoy/envoy.template.yaml",
        '              - match: {path: "/tkv.auth.v1.AuthService/Register"}\n'
        "                route: {cluster: auth_svc, timeout: 30s, rate_limits: [{actions: [{remote_address: {}}]}]}\n"
        "                typed_per_filter_config:\n"
        "                  envoy.filters.http.local_ratelimit: *auth_rate_limit\n",
        "",
        ("tests/security/test_gateway_limits.py::test_register_is_rate_limited_per_client",),
    ),
    Mutant(
        "X-Forwarded-For trusted",
        "envoy/envoy.template.yaml",
        "          xff_num_trusted_hops: 0",
        "          xff_num_trusted_hops: 1",
        ("tests/security/test_gateway_limits.py::test_a_forged_x_forwarded_for_does_not_make_a_new_client",),
    ),
    Mutant(
        "upstream certificate name not checked",
        "scripts/render_envoy.py",
        '            match_typed_subject_alt_names:\n            - san_type: {"IP_ADDRESS" if is_ip else "DNS"}\n'
        '              matcher: {{exact: "{host}"}}\n',
        "",
        ("tests/security/test_tls.py::test_envoy_refuses_a_service_whose_certificate_names_another_host",),
    ),
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
        "the original's typo corrected",
        "auth_svc/messages.py",
        "login should have onlu lower-upper",
        "login should have only lower-upper",
        ("tests/unit/test_registration_rules.py", "tests/e2e/test_original_wording.py"),
    ),
    Mutant(
        "malformed JSON answered 400",
        "envoy/envoy.template.yaml",
        "              status_code: 422",
        "              status_code: 400",
        ("tests/e2e/test_original_wording.py::test_a_malformed_body_is_422_with_a_message_on_every_route",),
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
    Mutant(
        "services stay on the first Tarantool node",
        "tkv_common/tarantool.py",
        "        return not read_only",
        "        return node is self._nodes[0]",
        ("tests/reliability/test_replication.py::test_failover_to_the_replica",),
    ),
    Mutant(
        "metrics forget the workers that exited",
        "tkv_common/metrics.py",
        "            _add(merged, exited, live=False)\n            return merged",
        "            return merged",
        (
            "tests/unit/test_metrics.py",
            "tests/e2e/test_observability.py::"
            "test_metrics_are_the_sum_over_workers_and_a_restarted_worker_neither_loses_nor_double_counts",
        ),
    ),
    Mutant(
        "errors do not carry the request id",
        "tkv_common/errors.py",
        '    metadata = {**metadata, "request_id": request_id} if request_id else metadata',
        "",
        ("tests/e2e/test_observability.py::test_a_request_id_leads_from_the_response_to_the_log_lines_and_the_error",),
    ),
    Mutant(
        "the service span ignores the gateway's traceparent",
        "tkv_common/interceptors.py",
        "            context=tracing.propagator.extract(carrier),",
        "            context=None,",
        ("tests/e2e/test_tracing.py::test_one_http_request_is_one_trace_from_the_gateway_to_tarantool",),
    ),
    # High availability (tkv_ha/, tarantool/tkv/ha.lua): the history checker of tests/ha
    # must catch each (the tests assert its verdict first).
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


def copy_tree(source: Path, into: Path) -> Path:
    target = into / "tree"
    shutil.copytree(source, target, ignore=NOT_COPIED, symlinks=True)
    return target


def run_tests(tree: Path, tests: tuple[str, ...], timeout: float) -> tuple[int, str, str]:
    """pytest's exit code, its summary line and its whole output."""
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests]
    try:
        result = subprocess.run(command, cwd=tree, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return -1, "timed out", ""
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    return result.returncode, lines[-1] if lines else result.stderr.strip()[-200:], result.stdout + result.stderr


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", default="", help="only mutants whose name contains this")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per test run")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTANTS if args.k.lower() in m.name.lower()]
    with tempfile.TemporaryDirectory(prefix="tkv-mutants-") as scratch:
        # Every copy comes from this one, taken now: edits to the work tree while the
        # mutants run do not leak into them.
        control = copy_tree(ROOT, Path(scratch) / "control")
        tests = tuple(dict.fromkeys(test for m in chosen for test in m.tests))
        code, summary, output = run_tests(control, tests, args.timeout)
        print(f"control (no mutation): {summary}", flush=True)
        if code != 0:
            print(output[-6000:], file=sys.stderr)
            print("the tests fail without any mutation: fix them first", file=sys.stderr)
            return 2
        survivors = []
        for index, mutant in enumerate(chosen):
            tree = copy_tree(control, Path(scratch) / f"mutant-{index}")
            source = tree / mutant.path
            text = source.read_text()
            if text.count(mutant.old) != 1:
                print(f"{mutant.name}: the text to replace is not in {mutant.path} exactly once", file=sys.stderr)
                return 2
            source.write_text(text.replace(mutant.old, mutant.new))
            started = time.monotonic()
            code, summary, _ = run_tests(tree, mutant.tests, args.timeout)
            verdict = "killed" if code == 1 else "SURVIVED" if code == 0 else f"error (exit {code})"
            print(f"{verdict:9} {mutant.name} ({time.monotonic() - started:.0f} s): {summary}", flush=True)
            if code != 1:
                survivors.append(mutant.name)
            shutil.rmtree(tree)
    print(f"{len(chosen) - len(survivors)} of {len(chosen)} mutants killed")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
