"""Settings (tkv_common/catalogue.py, tkv_common/settings.py): one source per setting, held
by tests/unit/test_settings_catalogue.py."""

from tests.mutants.mutant import Mutant

_DRIFT = "tests/unit/test_settings_catalogue.py"

MUTANTS = [
    Mutant(
        "a default written again in a launcher",
        "scripts/run.sh",
        "  auth_svc     $TKV_AUTH_LISTEN   gRPC",
        "  auth_svc     ${TKV_AUTH_LISTEN:-127.0.0.1:50051}   gRPC",
        (f"{_DRIFT}::test_no_default_is_written_outside_the_catalogue",),
    ),
    Mutant(
        "a default written again beside a service's read",
        "kv_svc/config.py",
        'max_batch_keys=env.int("TKV_KV_MAX_BATCH_KEYS"),',
        'max_batch_keys=env.int("TKV_KV_MAX_BATCH_KEYS", 1000),',
        (f"{_DRIFT}::test_no_default_is_written_outside_the_catalogue",),
    ),
    Mutant(
        "a default written again in Tarantool's Lua",
        "tarantool/tkv/config.lua",
        "listen = env('TKV_TARANTOOL_LISTEN'),",
        "listen = env('TKV_TARANTOOL_LISTEN', '127.0.0.1:3301'),",
        (f"{_DRIFT}::test_no_default_is_written_outside_the_catalogue",),
    ),
    Mutant(
        "a second, hand-kept settings table in the docs",
        "docs/operations.md",
        "## Backups\n",
        "## Backups\n\n| `TKV_TARANTOOL_CONSOLE_SOCKET` | unset | the admin console |\n",
        (f"{_DRIFT}::test_no_default_is_written_outside_the_catalogue",),
    ),
    Mutant(
        "a variable read but never catalogued",
        "scripts/run.sh",
        'mkdir -p "$TKV_DATA_DIR"',
        'mkdir -p "$TKV_DATA_DIR" "${TKV_LOG_DIR:?}"',
        (f"{_DRIFT}::test_every_tkv_variable_used_in_the_repository_is_in_the_catalogue",),
    ),
    Mutant(
        "a variable dropped from the catalogue",
        "tkv_common/catalogue.py",
        '        ("TKV_GATEWAY_IDLE_TIMEOUT_SECONDS", "int", 30, "a stream may stay idle at most this long"),\n',
        "",
        (
            f"{_DRIFT}::test_every_tkv_variable_used_in_the_repository_is_in_the_catalogue",
            f"{_DRIFT}::test_the_docs_and_lua_defaults_are_written_from_the_catalogue",
        ),
    ),
    Mutant(
        "the README's settings table edited by hand",
        "README.md",
        "| `TKV_KV_MAX_BATCH_KEYS` | `1000` |",
        "| `TKV_KV_MAX_BATCH_KEYS` | `500` |",
        (f"{_DRIFT}::test_the_docs_and_lua_defaults_are_written_from_the_catalogue",),
    ),
    Mutant(
        "Tarantool's generated defaults edited by hand",
        "tarantool/tkv/defaults.lua",
        "TKV_TARANTOOL_MEMORY_BYTES = {default = 268435456}",
        "TKV_TARANTOOL_MEMORY_BYTES = {default = 134217728}",
        (f"{_DRIFT}::test_the_docs_and_lua_defaults_are_written_from_the_catalogue",),
    ),
    Mutant(
        "a default quoted in the docs that the catalogue does not have",
        "docs/api.md",
        "`TKV_KV_MAX_KEY_BYTES` (1024)",
        "`TKV_KV_MAX_KEY_BYTES` (2048)",
        (f"{_DRIFT}::test_defaults_quoted_in_the_docs_agree_with_the_catalogue",),
    ),
    Mutant(
        "a setting's bound not taken from the catalogue",
        "tkv_common/settings.py",
        "minimum = 1 if setting.minimum is None else setting.minimum",
        "minimum = 1",
        (f"{_DRIFT}::test_a_settings_bound_comes_from_the_catalogue",),
    ),
    Mutant(
        "a default naming another setting taken literally",
        "tkv_common/settings.py",
        "            return TEMPLATE.sub(lambda match: self.text(match[1]), default)",
        "            return default",
        (f"{_DRIFT}::test_a_template_default_follows_the_setting_it_names",),
    ),
]
