"""The contract test's own password strategy (tests/contract/hooks.py) draws only passwords
that keep the register rules: the hooks state the classes again, and a draw auth_svc
refuses would stop the stateful phase's chains at their first call."""

from hypothesis import given

from auth_svc.users import password_violations
from tests.contract.hooks import valid_passwords


@given(valid_passwords())
def test_every_drawn_password_keeps_the_register_rules(password):
    assert password_violations(password) == []
