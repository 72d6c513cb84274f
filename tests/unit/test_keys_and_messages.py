"""Key rules, how keys appear in messages, and the exact status sentences."""

from kv_svc.config import Limits
from kv_svc.keys import KeyRules, quote_keys
from kv_svc.pairs import write_status

RULES = KeyRules(Limits(max_batch_keys=1000, max_key_bytes=1024, max_value_depth=32))


def test_write_status_is_the_original_sentence():
    assert write_status([]) == "success"
    assert write_status(["k1", "k2"]) == (
        "success, but these keys have not been written: k1 k2. Because they have already been in kv store"
    )


def test_keys_are_quoted_unambiguously():
    assert quote_keys(["a", "b c", 'd"e', "ж"]) == '"a", "b c", "d\\"e", "ж"'


def test_long_key_lists_are_cut_with_a_count():
    text = quote_keys([f"key{i:04d}" for i in range(1000)])
    assert len(text.encode()) < 2100
    assert text.endswith(" more")
    shown = text.count('"key')
    assert text.endswith(f"and {1000 - shown} more")


def test_batch_size_limits():
    assert RULES.batch_violations("keys", 0)[0].description == "must hold at least one key"
    assert RULES.batch_violations("keys", 1000) == []
    assert "at most 1000" in RULES.batch_violations("keys", 1001)[0].description


def test_key_size_is_counted_in_utf8_bytes():
    assert RULES.key_violation("k" * 1024) is None
    assert "1025 bytes" in RULES.key_violation("k" * 1025)
    assert RULES.key_violation("ж" * 512) is None  # 1024 bytes
    assert "1026 bytes" in RULES.key_violation("ж" * 513)
    assert RULES.key_violation("") == "key must not be empty"


def test_duplicates_are_named_once_each():
    [violation] = RULES.duplicates("keys", ["a", "b", "a", "c", "b", "a"])
    assert violation.description == 'duplicate keys: "a", "b"'
    assert RULES.duplicates("keys", ["a", "A"]) == []  # keys are case-sensitive
