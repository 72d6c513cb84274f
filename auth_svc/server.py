"""Wires auth_svc together: storage, password hasher, token issuer and verifier,
servicer, and the shared gRPC server (interceptor order lives in tkv_common.server)."""

from __future__ import annotations

from tkv.auth.v1 import auth_pb2, auth_pb2_grpc
from tkv_common.keys import KeySet
from tkv_common.server import GrpcService
from tkv_common.tarantool import TarantoolClient
from tkv_common.tokens import TokenVerifier

from . import messages
from .config import AuthSettings
from .passwords import PasswordHasher
from .servicer import AuthServicer
from .storage import AuthStorage
from .tokens import TokenIssuer
from .users import Accounts

SERVICE_NAME = auth_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name
PUBLIC_METHODS = frozenset({f"/{SERVICE_NAME}/Register", f"/{SERVICE_NAME}/Login", f"/{SERVICE_NAME}/GetJwks"})


def create_service(settings: AuthSettings, storage: TarantoolClient | None = None) -> GrpcService:
    """`storage` is for tests; the service normally opens its own Tarantool connection."""
    storage = storage or TarantoolClient(settings.tarantool)
    # Verified like kv_svc does it, from the public key set, so both accept the same tokens.
    keys = KeySet(settings.tokens.keys)
    issuer = TokenIssuer(settings.tokens, settings.token_ttl_seconds)
    accounts = Accounts(AuthStorage(storage), PasswordHasher(settings.passwords), issuer, settings.throttle)
    servicer = AuthServicer(accounts, keys, settings.trusted_proxies)
    return GrpcService(
        settings=settings.server,
        service_names=[SERVICE_NAME],
        registrars=[lambda server: auth_pb2_grpc.add_AuthServiceServicer_to_server(servicer, server)],
        verifier=TokenVerifier(keys, settings.tokens),
        keys=keys,
        on_keys_refresh=issuer.reload,
        public_methods=PUBLIC_METHODS,
        token_refusal=messages.NOT_AUTHORIZED,
        storage=storage,
    )
