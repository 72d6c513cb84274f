"""The validation rules of Register (docs/api.md, "Accounts"), each both ways."""

import pytest

from auth_svc.users import Registration, login_violations, name_violations, password_violations, registration_violations

VALID = Registration("Alice42", "Secr3t!pass", "Anna-Maria", "Smith")


@pytest.mark.parametrize("login", ["ab", "Alice", "alice42", "A1", "Z" * 64, "0123456789"])
def test_login_accepts_2_to_64_latin_letters_and_digits(login):
    assert login_violations(login) == []


LOGIN_SHORT = "Incorrect login: the length should be no less than 2 symbols"
LOGIN_LONG = "Incorrect login: the length should be no more than 64 symbols"
LOGIN_CHARS = "Incorrect login: login should have onlu lower-upper latin letters and digits"


@pytest.mark.parametrize(
    ("login", "texts"),
    [
        ("", [LOGIN_SHORT]),
        ("a", [LOGIN_SHORT]),
        ("Z" * 65, [LOGIN_LONG]),
        ("_", [LOGIN_SHORT, LOGIN_CHARS]),
        ("_" * 65, [LOGIN_LONG, LOGIN_CHARS]),
        ("al ice", [LOGIN_CHARS]),
        ("alice_1", [LOGIN_CHARS]),
        ("alice-1", [LOGIN_CHARS]),
        ("алиса", [LOGIN_CHARS]),
        ("Ålice", [LOGIN_CHARS]),
        ("alice\n", [LOGIN_CHARS]),
        ("al.ice", [LOGIN_CHARS]),
        ("ａｂ", [LOGIN_CHARS]),
    ],
)
def test_login_rejects_with_each_rule_in_the_originals_words(login, texts):
    violations = login_violations(login)
    assert {v.field for v in violations} == {"login"}
    assert [v.description for v in violations] == texts


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


PASSWORD_SHORT = "Incorrect password: the length should be no less than 8 symbols"
PASSWORD_LONG = "Incorrect password: the length should be no more than 64 symbols"
LACKS = "Incorrect password: the password should have at least one "
CONTROL = "Incorrect password: the password should not have control characters"


@pytest.mark.parametrize(
    ("password", "texts"),
    [
        ("Aa1!aaa", [PASSWORD_SHORT]),
        ("Aa1!" + "x" * 61, [PASSWORD_LONG]),
        ("secr3t!pass", [LACKS + "UPPER_CASE"]),
        ("SECR3T!PASS", [LACKS + "LOWER_CASE"]),
        ("Secret!pass", [LACKS + "DIGITS"]),
        ("Secr3tpass", [LACKS + "SPECIAL_SYMBOLS"]),
        ("Secr3t!pass\t", [CONTROL]),
        ("Secr3t\x7fpass!", [CONTROL]),
        ("Secr3t\npass!", [CONTROL]),
        ("Secr3t\x00pass!", [CONTROL]),
        # A TAB is not printable, so it is no special character either.
        ("Secr3t\tpass", [LACKS + "SPECIAL_SYMBOLS", CONTROL]),
        ("", [PASSWORD_SHORT, *(LACKS + c for c in ("LOWER_CASE", "UPPER_CASE", "DIGITS", "SPECIAL_SYMBOLS"))]),
    ],
)
def test_password_rejects_with_each_rule_in_the_originals_words(password, texts):
    violations = password_violations(password)
    assert {v.field for v in violations} == {"password"}
    assert [v.description for v in violations] == texts


def test_password_reports_every_missing_class_at_once():
    assert [v.description for v in password_violations("abc")] == [
        PASSWORD_SHORT,
        LACKS + "UPPER_CASE",
        LACKS + "DIGITS",
        LACKS + "SPECIAL_SYMBOLS",
    ]


def test_password_length_counts_code_points_not_bytes():
    # 8 code points, 11 bytes of UTF-8
    assert password_violations("Aa1ыыыaa") == []


@pytest.mark.parametrize("name", ["Anna", "Anna-Maria", "Jo", "A-B", "a" * 32, "Jean-Luc-Picard"])
def test_name_accepts_letters_and_single_inner_hyphens(name):
    assert name_violations("name", name) == []


INITIAL_SHORT = "Incorrect initial: the length should be no less than 2 symbols"
INITIAL_LONG = "Incorrect initial: the length should be no more than 32 symbols"
INITIAL_CHARS = "Incorrect initial: initial should have only lower-upper latin letters"


@pytest.mark.parametrize(
    ("name", "texts"),
    [
        ("A", [f"{INITIAL_SHORT} (surname)"]),
        ("", [f"{INITIAL_SHORT} (surname)"]),
        ("a" * 33, [f"{INITIAL_LONG} (surname)"]),
        ("Roman123", [f"{INITIAL_CHARS} (surname)"]),
        ("Анна", [f"{INITIAL_CHARS} (surname)"]),
        ("Anna Maria", [f"{INITIAL_CHARS} (surname)"]),
        ("Anna\n", [f"{INITIAL_CHARS} (surname)"]),
        ("1", [f"{INITIAL_SHORT} (surname)", f"{INITIAL_CHARS} (surname)"]),
        ("----", [f"{INITIAL_CHARS} (surname: a '-' must stand between two letters)"]),
        ("-Anna", [f"{INITIAL_CHARS} (surname: a '-' must stand between two letters)"]),
        ("Anna-", [f"{INITIAL_CHARS} (surname: a '-' must stand between two letters)"]),
        ("Anna--Maria", [f"{INITIAL_CHARS} (surname: a '-' must stand between two letters)"]),
    ],
)
def test_name_rejects_with_the_originals_words_followed_by_the_field(name, texts):
    violations = name_violations("surname", name)
    assert {v.field for v in violations} == {"surname"}
    assert [v.description for v in violations] == texts


def test_registration_names_every_failed_rule_in_field_order():
    bad = Registration("a", "short", "-Anna", "Roman123")
    assert [(v.field, v.description) for v in registration_violations(bad)] == [
        ("login", LOGIN_SHORT),
        ("password", PASSWORD_SHORT),
        ("password", LACKS + "UPPER_CASE"),
        ("password", LACKS + "DIGITS"),
        ("password", LACKS + "SPECIAL_SYMBOLS"),
        ("name", f"{INITIAL_CHARS} (name: a '-' must stand between two letters)"),
        ("surname", f"{INITIAL_CHARS} (surname)"),
    ]


def test_valid_registration_has_no_violations():
    assert registration_violations(VALID) == []
