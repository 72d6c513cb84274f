"""Both services in-process on real sockets (127.0.0.1:0), against a Stack's real
Tarantool: the harness of the integration and security tiers."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

import grpc

from auth_svc.config import AuthSettings
from auth_svc.server import create_service as create_auth
from kv_svc.config import KvSettings
from kv_svc.server import create_service as create_kv
from tests.stack import Stack
from tkv.auth.v1 import auth_pb2, auth_pb2_grpc
from tkv.kv.v1 import kv_pb2_grpc
from tkv.kv.v2 import kv_pb2_grpc as kv2_pb2_grpc

PASSWORD = "Secr3t!pass"
# Large enough to read back a value the size of the request limit.
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
]


@dataclass
class Services:
    """Both services running in this process, and stubs bound to them."""

    auth: auth_pb2_grpc.AuthServiceStub
    kv: kv_pb2_grpc.KeyValueServiceStub
    kv2: kv2_pb2_grpc.KeyValueServiceStub
    auth_service: object
    kv_service: object
    channels: list[grpc.aio.Channel]
    stack: Stack


async def start_services(stack: Stack, **overrides: str) -> Services:
    environ = {**stack.env, "TKV_AUTH_LISTEN": "127.0.0.1:0", "TKV_KV_LISTEN": "127.0.0.1:0", **overrides}
    auth = create_auth(AuthSettings.from_env(environ))
    kv = create_kv(KvSettings.from_env(environ))
    auth_port, kv_port = await auth.start(), await kv.start()
    auth_channel = grpc.aio.insecure_channel(f"127.0.0.1:{auth_port}", options=CHANNEL_OPTIONS)
    kv_channel = grpc.aio.insecure_channel(f"127.0.0.1:{kv_port}", options=CHANNEL_OPTIONS)
    harness = Services(
        auth=auth_pb2_grpc.AuthServiceStub(auth_channel),
        kv=kv_pb2_grpc.KeyValueServiceStub(kv_channel),
        kv2=kv2_pb2_grpc.KeyValueServiceStub(kv_channel),
        auth_service=auth,
        kv_service=kv,
        channels=[auth_channel, kv_channel],
        stack=stack,
    )
    await wait_until_connected(harness)
    return harness


async def wait_until_connected(harness, timeout: float = 10.0) -> None:
    storages = [harness.auth_service._storage, harness.kv_service._storage]
    for _ in range(int(timeout / 0.05)):
        if all(s.is_connected for s in storages):
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("services did not connect to Tarantool")


async def stop_services(harness) -> None:
    for channel in harness.channels:
        await channel.close()
    await harness.auth_service.stop()
    await harness.kv_service.stop()


def unique(prefix: str = "k") -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


async def register_and_login(svc, login: str | None = None) -> tuple[str, str]:
    login = login or unique("user")
    await svc.auth.Register(auth_pb2.RegisterRequest(login=login, password=PASSWORD, name="Anna", surname="Smith"))
    response = await svc.auth.Login(auth_pb2.LoginRequest(login=login, password=PASSWORD))
    return login, response.token
