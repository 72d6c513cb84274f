"""Log lines (tkv_common/logs.py): JsonFormatter.line builds its JSON directly for speed;
it must write exactly what json.dumps of the entry would, for any field a call site passes."""

import json
import math
import random
import time

import pytest

from tkv_common import logs, request_ids


def reference(service, created, level, pid, logger, msg, fields):
    """The line as the formatter wrote it before it was built directly."""
    entry = {
        "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{int(created * 1000) % 1000:03d}Z",
        "level": level.lower(),
        "service": service,
        "pid": pid,
        "logger": logger,
        "msg": msg,
        **fields,
    }
    request_id = request_ids.current.get()
    if request_id is not None:
        entry["request_id"] = request_id
    return json.dumps(entry, default=str, ensure_ascii=False)


AWKWARD = ['say "hi"', "back\\slash", "tab\there", "line\nbreak", "\x00", "\x7f", "é ключ 鍵", "\u2028", "\ud800", ""]


def random_value(rng):
    return rng.choice(
        [
            rng.choice(AWKWARD) + rng.choice(["", "x", "/tkv.kv.v1.KeyValueService/Read"]),
            rng.randrange(-(10**12), 10**12),
            rng.uniform(-1e6, 1e6),
            rng.choice([math.nan, math.inf, -math.inf, 0.0, 1e-9]),
            True,
            False,
            None,
            ["a", 1],
            {"k": "v"},
            ValueError("boom"),  # default=str
        ]
    )


@pytest.mark.parametrize("seed", range(5))
def test_a_line_is_what_json_dumps_writes(seed):
    rng = random.Random(seed)
    formatter = logs.JsonFormatter("kv_svc")
    for _ in range(400):
        fields = {rng.choice(["method", "code", "peer", "duration_ms", "é", 'q"k', "error"]): random_value(rng)}
        fields[rng.choice(["a", "b", "ts", "msg", "request_id", "level"])] = random_value(rng)  # sometimes reserved
        created = rng.uniform(1.7e9, 1.8e9)
        args = (created, rng.choice(["INFO", "WARNING"]), rng.choice([123, None]), "tkv.access", rng.choice(AWKWARD))
        token = request_ids.current.set(rng.choice([None, "0123abcd-00000001", 'odd"id']))
        try:
            line = formatter.line(*args, dict(fields))
            assert line == reference("kv_svc", *args, fields)
        finally:
            request_ids.current.reset(token)
        json.loads(line.replace("NaN", "0").replace("-Infinity", "0").replace("Infinity", "0"))


def test_the_timestamp_follows_the_clock_across_seconds():
    formatter = logs.JsonFormatter("auth_svc")
    for created in (1_800_000_000.999, 1_800_000_001.0, 1_800_000_000.5, 1_800_003_600.25):
        assert formatter.line(created, "INFO", 1, "x", "m", {}) == reference(
            "auth_svc", created, "INFO", 1, "x", "m", {}
        )
