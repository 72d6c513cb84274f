"""The catalogue of `make mutants` (scripts/mutants.py): one mutant per rule, by area.

A rule added to the code gets its mutant here, in the area's module, naming the tests that
prove the rule; tests/unit/test_mutants_apply.py checks in `make test` that it still applies.
"""

from tests.mutants import auth, client, contract, gateway, ha, kv, service, settings, storage, watch
from tests.mutants.mutant import Mutant

AREAS: dict[str, list[Mutant]] = {
    area.__name__.rsplit(".", 1)[1]: area.MUTANTS
    for area in (auth, gateway, contract, kv, watch, service, client, storage, ha, settings)
}
MUTANTS: list[Mutant] = [mutant for mutants in AREAS.values() for mutant in mutants]
