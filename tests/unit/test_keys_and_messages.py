"""Key rules, how keys appear in messages, and the original's exact sentences.

Every expected text is written out here, not imported: the original's clients match on
these words (typos included), so a change to one must fail a test.
"""

import pytest

from kv_svc.config import Limits
from kv_svc.keys import KeyRules, list_keys
from kv_svc.rules_v1 import write_status

RULES = KeyRules(Limits(max_batch_keys=1000, max_key_bytes=1024, max_value_depth=32))


def test_write_status_is_the_original_sentence():
    assert write_status([]) == "success"
    assert write_status(["k1", "k2"]) == (
        "success, but these keys have not been written: k1 k2. Because they have already been in kv store"
    )


def test_write_status_lists_every_skipped_key_as_it_is():
    keys = [f"key {i}" for i in range(500)]
    assert write_status(keys) == (
        f"success, but these keys have not been written: {' '.join(keys)}. Because they have already been in kv store"
    )


@pytest.mark.parametrize(
    ("keys", "text"),
    [
        (["key1", "key2"], "key1 key2"),
        (["ж", "a/b%c?d#e"], "ж a/b%c?d#e"),
        # Keys that would make the list ambiguous are JSON strings.
        (["b c", 'd"e', "f\\g", "h\ni", "j\tk"], '"b c" "d\\"e" "f\\\\g" "h\\ni" "j\\tk"'),
        (["no\u00a0break"], '"no\u00a0break"'),
    ],
)
def test_keys_are_listed_as_the_original_did_and_quoted_only_when_needed(keys, text):
    assert list_keys(keys) == text


def test_long_key_lists_are_cut_with_a_count():
    text = list_keys([f"key{i:04d}" for i in range(1000)])
    assert len(text.encode()) < 2100
    shown = text.count("key")
    assert 0 < shown < 1000
    assert text.endswith(f" and {1000 - shown} more")


def test_batch_size_limits():
    assert RULES.batch_violations("keys", 0)[0].description == "Incorrect keys: you have not passed any keys"
    assert RULES.batch_violations("keys", 1000) == []
    assert RULES.batch_violations("keys", 1001)[0].description == (
        "Incorrect keys: you cannot pass more than 1000 keys at once (got 1001)"
    )


def test_key_size_is_counted_in_utf8_bytes():
    assert RULES.key_violation("k" * 1024, "keys[0]") is None
    assert RULES.key_violation("k" * 1025, "keys[3]") == (
        "Incorrect keys: a key should be no more than 1024 bytes of UTF-8 (keys[3]: 1025 bytes)"
    )
    assert RULES.key_violation("ж" * 512, "keys[0]") is None  # 1024 bytes
    assert "(keys[0]: 1026 bytes)" in RULES.key_violation("ж" * 513, "keys[0]")


def test_empty_and_nul_keys_are_refused_saying_where():
    assert RULES.key_violation("", "keys[2]") == "Incorrect keys: a key cannot be empty (keys[2])"
    assert RULES.key_violation("a\x00b", "keys[0]") == "Incorrect keys: a key cannot contain NUL (U+0000) (keys[0])"


def test_duplicates_are_named_once_each_in_the_originals_words():
    [violation] = RULES.duplicates("keys", ["a", "b", "a", "c", "b", "a"])
    assert violation.description == "Incorrect keys: you cannot pass identical keys: a b"
    assert RULES.duplicates("keys", ["a", "A"]) == []  # keys are case-sensitive
