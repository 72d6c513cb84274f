"""argon2id hashing with the configured policy."""

import asyncio

from auth_svc.config import PasswordPolicy
from auth_svc.passwords import PasswordHasher
from tkv_common.errors import ResourceExhausted


async def test_default_policy_hashes_with_owasp_argon2id_parameters():
    hasher = PasswordHasher(PasswordPolicy(memory_kib=19456, time_cost=2, parallelism=1, workers=1, max_pending=8))
    password_hash = await hasher.hash("Secr3t!pass")
    assert password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert "Secr3t!pass" not in password_hash
    assert await hasher.verify("Secr3t!pass", password_hash)
    assert not await hasher.verify("Secr3t!pasS", password_hash)


async def test_same_password_gets_a_different_salt_each_time():
    hasher = PasswordHasher(PasswordPolicy(memory_kib=1024, time_cost=1, parallelism=1, workers=2, max_pending=8))
    first, second = await asyncio.gather(hasher.hash("Secr3t!pass"), hasher.hash("Secr3t!pass"))
    assert first != second


async def test_unknown_account_verifies_against_the_decoy_and_fails():
    hasher = PasswordHasher(PasswordPolicy(memory_kib=1024, time_cost=1, parallelism=1, workers=1, max_pending=8))
    assert await hasher.verify("anything", None) is False


async def test_hashes_made_with_other_parameters_need_an_update():
    old = PasswordHasher(PasswordPolicy(memory_kib=1024, time_cost=1, parallelism=1, workers=1, max_pending=8))
    current = PasswordHasher(PasswordPolicy(memory_kib=19456, time_cost=2, parallelism=1, workers=1, max_pending=8))
    old_hash = await old.hash("Secr3t!pass")
    assert current.needs_update(old_hash)
    assert not current.needs_update(await current.hash("Secr3t!pass"))


async def test_a_full_queue_refuses_at_once_instead_of_piling_up():
    hasher = PasswordHasher(PasswordPolicy(memory_kib=8192, time_cost=3, parallelism=1, workers=1, max_pending=2))
    results = await asyncio.gather(*(hasher.hash("Secr3t!pass") for _ in range(6)), return_exceptions=True)
    refused = [r for r in results if isinstance(r, ResourceExhausted)]
    assert len(refused) == 4
    assert all(r.reason == "HASHING_BUSY" and r.retry_after_seconds == 1 for r in refused)
