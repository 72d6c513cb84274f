"""schemathesis hooks for tests/contract/test_openapi_contract.py (loaded through
SCHEMATHESIS_HOOKS): what a generated request cannot know about the live gateway's state,
and values a generator cannot draw from their schema alone.

Passwords. A password's rule is a pattern with lookaheads (one of each class), which
Hypothesis cannot generate from: it draws from the pattern without them and throws away
what misses a class. It gave up on most Register calls, and a stateful scenario that gives
up ends there, so chains stopped after two or three calls. The description marks these
fields `format: password`; the strategy below draws only valid ones (one of each class,
then printable ASCII up to the length limit). The negative cases still come from the
schema: schemathesis mutates the length, the type and the pattern.

Logins. The stateful phase follows the links register -> login -> put -> get/list/delete.
Hypothesis draws the shortest valid logins ("00", "000", ...), which the first scenario
takes: every later Register answered 400 (login taken), so no chain got past its first
call. In the stateful phase each Register gets a login no earlier call used: the drawn
login plus a random suffix, still 2-64 letters and digits, so the request stays
schema-valid. The other phases keep the drawn logins, and with them the refusal of a taken
login."""

from __future__ import annotations

import string
import sys
import uuid
from pathlib import Path

import schemathesis
from hypothesis import strategies as st
from schemathesis.generation.meta import TestPhase

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # schemathesis loads this file by path

from auth_svc.users import LOGIN_LENGTH, PASSWORD_LENGTH

SUFFIX_BYTES = 16
CLASSES = (string.ascii_lowercase, string.ascii_uppercase, string.digits, string.punctuation + " ")
PRINTABLE_ASCII = "".join(chr(code) for code in range(0x20, 0x7F))


def valid_passwords() -> st.SearchStrategy[str]:
    """One character of each class, then the rest from printable ASCII (the run's codec)."""
    low, high = PASSWORD_LENGTH
    one_of_each = st.tuples(*(st.sampled_from(chars) for chars in CLASSES)).map("".join)
    rest = st.text(PRINTABLE_ASCII, min_size=low - len(CLASSES), max_size=high - len(CLASSES))
    return st.tuples(one_of_each, rest).map("".join)


schemathesis.openapi.format("password", valid_passwords())


@schemathesis.hook("before_call").apply_to(operation_id="auth_v1_Register")
def register_a_login_no_call_used(context, case, **kwargs) -> None:
    meta = case.meta
    if meta is None or meta.phase.name != TestPhase.STATEFUL or not isinstance(case.body, dict):
        return
    login = case.body.get("login")
    if isinstance(login, str):
        case.body = {**case.body, "login": login[: LOGIN_LENGTH[1] - SUFFIX_BYTES] + uuid.uuid4().hex[:SUFFIX_BYTES]}
