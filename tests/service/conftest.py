"""Service tier: the real servers and interceptor chain on 127.0.0.1:0, storage scripted."""

from __future__ import annotations

from types import SimpleNamespace

import grpc
import pytest

from auth_svc.config import AuthSettings
from auth_svc.server import create_service as create_auth
from kv_svc.config import KvSettings
from kv_svc.server import create_service as create_kv
from tests.stack import FAST_ARGON2
from tkv.auth.v1 import auth_pb2_grpc
from tkv.kv.v1 import kv_pb2_grpc
from tkv_common import devsecrets


class ScriptedStorage:
    """Stands in for TarantoolClient: answers each stored function as scripted."""

    def __init__(self):
        self.calls: list[tuple[str, tuple]] = []
        self.answers: dict[str, object] = {}
        self.is_connected = True

    def start(self) -> None:
        pass

    async def call(self, function: str, *args, wait: float = 0.0, read: bool = False):
        self.calls.append((function, args))
        answer = self.answers[function]
        if isinstance(answer, BaseException):
            raise answer
        return answer(*args) if callable(answer) else answer

    async def close(self) -> None:
        pass


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("service-tier")
    devsecrets.ensure(path)
    return path


def _environ(data_dir):
    return {
        "TKV_DATA_DIR": str(data_dir),
        "TKV_TARANTOOL_PASSWORD": "unused",
        **FAST_ARGON2,
        "TKV_AUTH_LISTEN": "127.0.0.1:0",
        "TKV_KV_LISTEN": "127.0.0.1:0",
        "TKV_MAX_REQUEST_BYTES": str(64 * 1024),
    }


async def _serve(create_service, settings, stub_class):
    storage = ScriptedStorage()
    service = create_service(settings, storage=storage)
    port = await service.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    harness = SimpleNamespace(stub=stub_class(channel), storage=storage, channel=channel, service=service)
    return harness


async def _close(harness) -> None:
    await harness.channel.close()
    await harness.service.stop()


@pytest.fixture(scope="session")
async def kv(data_dir):
    harness = await _serve(create_kv, KvSettings.from_env(_environ(data_dir)), kv_pb2_grpc.KeyValueServiceStub)
    yield harness
    await _close(harness)


@pytest.fixture(scope="session")
async def auth(data_dir):
    harness = await _serve(create_auth, AuthSettings.from_env(_environ(data_dir)), auth_pb2_grpc.AuthServiceStub)
    yield harness
    await _close(harness)


@pytest.fixture(autouse=True)
def reset_storage(request):
    for name in ("kv", "auth"):
        if name in request.fixturenames:
            harness = request.getfixturevalue(name)
            harness.storage.calls.clear()
            harness.storage.answers.clear()
            harness.storage.is_connected = True
