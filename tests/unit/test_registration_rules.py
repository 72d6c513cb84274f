"""SPEC validation rules for register, each both ways."""

import pytest

from auth_svc.users import Registration, login_violations, name_violations, password_violations, registration_violations

VALID = Registration("Alice42", "Secr3t!pass", "Anna-Maria", "Smith")


@pytest.mark.parametrize("login", ["ab", "Alice", "alice42", "A1", "Z" * 64, "0123456789"])
def test_login_accepts_2_to_64_latin_letters_and_digits(login):
    assert login_violations(login) == []


@pytest.mark.parametrize(
    "login",
    ["", "a", "Z" * 65, "al ice", "alice_1", "alice-1", "алиса", "Ålice", "alice\n", "al.ice", "ａｂ"],
)
def test_login_rejects_wrong_length_or_characters(login):
    [violation] = login_violations(login)
    assert violation.field == "login"
    assert "2-64" in violation.description


@pytest.mark.parametrize(
    "password",
    [
        "Secr3t!pass",
        "Aa1 aaaa",  # space is a special character
        "Aa1ыaaaa",  # a non-Latin letter is a special character
        "Aa1!" + "x" * 60,  # 64 code points
        "Пароль1Aa",  # Cyrillic letters count as special
        "Aa1!Aa1!",  # exactly 8
        "Aa1😀aaaa",  # emoji is printable and not an ASCII letter/digit
    ],
)
def test_password_accepts_policy_compliant(password):
    assert password_violations(password) == []


@pytest.mark.parametrize(
    ("password", "expected"),
    [
        ("Aa1!aaa", "8-64"),
        ("Aa1!" + "x" * 61, "8-64"),
        ("secr3t!pass", "uppercase"),
        ("SECR3T!PASS", "lowercase"),
        ("Secret!pass", "digit"),
        ("Secr3tpass", "special"),
        ("Secr3t\tpass!", "control"),
        ("Secr3t\x7fpass!", "control"),
        ("Secr3t\npass!", "control"),
        ("Secr3t\x00pass!", "control"),
        ("", "8-64"),
    ],
)
def test_password_rejects_with_the_reason(password, expected):
    [violation] = password_violations(password)
    assert violation.field == "password"
    assert expected in violation.description


def test_password_reports_every_missing_class_at_once():
    [violation] = password_violations("abc")
    assert "8-64" in violation.description
    for missing in ("uppercase", "digit", "special"):
        assert missing in violation.description


def test_password_length_counts_code_points_not_bytes():
    # 8 code points, 11 bytes of UTF-8
    assert password_violations("Aa1ыыыaa") == []


@pytest.mark.parametrize("name", ["Anna", "Anna-Maria", "Jo", "A-B", "a" * 32, "Jean-Luc-Picard"])
def test_name_accepts_letters_and_single_inner_hyphens(name):
    assert name_violations("name", name) == []


@pytest.mark.parametrize(
    "name", ["----", "-Anna", "Anna-", "Anna--Maria", "Roman123", "A", "a" * 33, "Анна", "Anna Maria", "", "Anna\n"]
)
def test_name_rejects(name):
    [violation] = name_violations("surname", name)
    assert violation.field == "surname"


def test_registration_names_every_failed_field_in_order():
    bad = Registration("a", "short", "-Anna", "Roman123")
    assert [v.field for v in registration_violations(bad)] == ["login", "password", "name", "surname"]


def test_valid_registration_has_no_violations():
    assert registration_violations(VALID) == []
