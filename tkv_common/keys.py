"""Token signing keys: the set of accepted public keys, its JWKS form, and rotation.

Layout (under $TKV_DATA_DIR/keys by default):

    signing.pem            auth_svc's current private key   (TKV_JWT_SIGNING_KEY_FILE)
    signing.next.pem       the next one, between `prepare` and `activate`
    public/<kid>.pem       every public key a token may be signed with (TKV_JWT_PUBLIC_KEYS_DIR)

A key's id (`kid`) is its RFC 7638 JWK thumbprint, so it cannot disagree with the key.
Both services reload the public directory (and auth_svc its signing key) every
TKV_JWT_KEYS_REFRESH_SECONDS, so rotation needs no restart. Rotation, step by step
(docs/security.md):

    python -m tkv_common.keys prepare     # new key pair; its public half is accepted from now on
    # wait for one refresh interval, so every process accepts the new key
    python -m tkv_common.keys activate    # auth_svc signs with the new key from its next refresh
    # wait for the token lifetime (30 min) + leeway: tokens of the old key have all expired
    python -m tkv_common.keys retire KID  # the old key is no longer accepted
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key

from .settings import ConfigError, Env

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KeySettings:
    signing_key_file: Path
    public_keys_dir: Path
    refresh_seconds: float

    @classmethod
    def from_env(cls, env: Env) -> KeySettings:
        return cls(
            signing_key_file=env.path("TKV_JWT_SIGNING_KEY_FILE"),
            public_keys_dir=env.path("TKV_JWT_PUBLIC_KEYS_DIR"),
            refresh_seconds=env.float("TKV_JWT_KEYS_REFRESH_SECONDS"),
        )

    @property
    def next_signing_key_file(self) -> Path:
        return self.signing_key_file.with_name(self.signing_key_file.stem + ".next.pem")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def public_jwk(key: Ed25519PublicKey) -> dict[str, str]:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": _b64url(raw)}


def key_id(key: Ed25519PublicKey) -> str:
    """RFC 7638 thumbprint: SHA-256 of the required members in lexicographic order."""
    canonical = json.dumps(public_jwk(key), sort_keys=True, separators=(",", ":")).encode()
    return _b64url(hashlib.sha256(canonical).digest())


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"cannot read the JWT {what} {path} ({exc.strerror}); "
            "run `python -m tkv_common.devsecrets` for a development key pair"
        ) from None


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    key = load_pem_private_key(_read(path, "signing key"), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path} is not an Ed25519 private key")
    return key


def load_public_keys(directory: Path) -> dict[str, Ed25519PublicKey]:
    """kid -> key for every *.pem in `directory`; unreadable or foreign files are errors."""
    if not directory.is_dir():
        raise ConfigError(
            f"the JWT public keys directory {directory} does not exist; "
            "run `python -m tkv_common.devsecrets` for a development key pair"
        )
    keys = {}
    for path in sorted(directory.glob("*.pem")):
        key = load_pem_public_key(_read(path, "public key"))
        if not isinstance(key, Ed25519PublicKey):
            raise ConfigError(f"{path} is not an Ed25519 public key")
        keys[key_id(key)] = key
    if not keys:
        raise ConfigError(f"no public keys (*.pem) in {directory}")
    return keys


class KeySet:
    """The public keys tokens may be signed with, reloaded from disk in the background.

    A reload that fails (a half-written file, an empty directory) keeps the previous set
    and logs, so a botched rotation step never locks everyone out at once.
    """

    def __init__(self, settings: KeySettings):
        self._settings = settings
        self._keys = load_public_keys(settings.public_keys_dir)
        self._task: asyncio.Task | None = None

    def get(self, kid: str) -> Ed25519PublicKey | None:
        return self._keys.get(kid)

    def jwks(self) -> list[dict[str, str]]:
        return [{**public_jwk(key), "kid": kid, "use": "sig", "alg": "EdDSA"} for kid, key in self._keys.items()]

    def reload(self) -> None:
        try:
            keys = load_public_keys(self._settings.public_keys_dir)
        except (ConfigError, ValueError) as exc:
            log.error("keeping the previous JWT public keys", extra={"error": str(exc)})
            return
        if keys.keys() != self._keys.keys():
            log.info("JWT public keys changed", extra={"kids": sorted(keys)})
        self._keys = keys

    def start(self, on_refresh=None) -> None:
        async def refresh_forever():
            while True:
                await asyncio.sleep(self._settings.refresh_seconds)
                self.reload()
                if on_refresh is not None:
                    on_refresh()

        self._task = asyncio.create_task(refresh_forever(), name="jwt-keys-refresh")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def _write_private(path: Path, key: Ed25519PrivateKey) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
    os.replace(temporary, path)  # readers see the old file or the new one, never half of one


def write_public(directory: Path, key: Ed25519PublicKey) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{key_id(key)}.pem"
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    os.replace(temporary, path)
    return path


def ensure_signing_key(settings: KeySettings) -> list[Path]:
    """First start: a signing key and its public half. Existing keys are kept."""
    created = []
    if not settings.signing_key_file.exists():
        _write_private(settings.signing_key_file, Ed25519PrivateKey.generate())
        created.append(settings.signing_key_file)
    public = load_signing_key(settings.signing_key_file).public_key()
    if not (settings.public_keys_dir / f"{key_id(public)}.pem").exists():
        created.append(write_public(settings.public_keys_dir, public))
    return created


def prepare(settings: KeySettings) -> str:
    key = Ed25519PrivateKey.generate()
    _write_private(settings.next_signing_key_file, key)
    write_public(settings.public_keys_dir, key.public_key())
    return key_id(key.public_key())


def activate(settings: KeySettings) -> str:
    if not settings.next_signing_key_file.exists():
        raise ConfigError(f"no {settings.next_signing_key_file}: run `prepare` first")
    kid = key_id(load_signing_key(settings.next_signing_key_file).public_key())
    if not (settings.public_keys_dir / f"{kid}.pem").exists():
        raise ConfigError(f"the public key {kid} is not in {settings.public_keys_dir}; run `prepare` again")
    os.replace(settings.next_signing_key_file, settings.signing_key_file)
    return kid


def retire(settings: KeySettings, kid: str) -> None:
    current = key_id(load_signing_key(settings.signing_key_file).public_key())
    if kid == current:
        raise ConfigError(f"{kid} is the current signing key; activate another one first")
    path = settings.public_keys_dir / f"{kid}.pem"
    if not path.exists():
        raise ConfigError(f"no public key {kid} in {settings.public_keys_dir}")
    path.unlink()


def main(argv: list[str]) -> int:
    settings = KeySettings.from_env(Env())
    try:
        match argv:
            case ["list"]:
                current = key_id(load_signing_key(settings.signing_key_file).public_key())
                for kid in load_public_keys(settings.public_keys_dir):
                    print(kid, "(signing)" if kid == current else "")
            case ["prepare"]:
                print(f"prepared {prepare(settings)}; run `activate` after {settings.refresh_seconds:g} s")
            case ["activate"]:
                print(f"activated {activate(settings)}; retire the old key after the token lifetime")
            case ["retire", kid]:
                retire(settings, kid)
                print(f"retired {kid}")
            case _:
                print("usage: python -m tkv_common.keys list|prepare|activate|retire KID", file=sys.stderr)
                return 2
    except ConfigError as exc:
        print(f"keys: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
