"""A small etcd v3 client over several endpoints, for the failover agent and the services.

etcd decides who leads the Tarantool replica set (docs/high-availability.md); this module
only carries the few calls that needs: get, put, delete, a create-if-absent transaction,
leases and a one-shot watch. It speaks gRPC through the stubs that PyPI's `aetcd` ships
(`aetcd.rpc`), not through aetcd's Client: that one talks to a single endpoint, while a
member cut off from etcd's quorum must be left for another at once, as etcd's own clientv3
balancer does. Every call carries a timeout; a failed endpoint is skipped for the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import grpc
from aetcd import rpc

log = logging.getLogger(__name__)

T = TypeVar("T")


class EtcdUnavailable(Exception):
    """No endpoint answered (etcd down, or no member with a quorum reachable)."""


class EtcdRejected(Exception):
    """etcd answered, and refused (a lease that no longer exists, a bad request)."""


REJECTIONS = {
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.OUT_OF_RANGE,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED,
}


@dataclass(frozen=True)
class KeyValue:
    key: str
    value: bytes
    lease: int
    mod_revision: int
    create_revision: int


def _kv(item) -> KeyValue:
    return KeyValue(item.key.decode(), item.value, item.lease, item.mod_revision, item.create_revision)


def prefix_end(prefix: bytes) -> bytes:
    """The end of the key range that holds every key under `prefix` (etcd's convention)."""
    as_list = bytearray(prefix)
    for i in reversed(range(len(as_list))):
        if as_list[i] < 0xFF:
            as_list[i] += 1
            return bytes(as_list[: i + 1])
    return b"\0"


class Etcd:
    """Calls go to the endpoint that answered last; on a failure, to the next one."""

    def __init__(self, endpoints: tuple[str, ...], timeout: float = 1.0):
        if not endpoints:
            raise ValueError("at least one etcd endpoint is needed")
        self.endpoints = endpoints
        self.timeout = timeout
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._current = 0

    def _channel(self, endpoint: str) -> grpc.aio.Channel:
        channel = self._channels.get(endpoint)
        if channel is None:
            # A lost member is noticed within the call timeout, and reconnected to quickly
            # once back (gRPC's default backoff reaches 2 minutes).
            channel = self._channels[endpoint] = grpc.aio.insecure_channel(
                endpoint,
                options=[
                    ("grpc.initial_reconnect_backoff_ms", 100),
                    ("grpc.max_reconnect_backoff_ms", 1000),
                    ("grpc.keepalive_time_ms", 2000),
                    ("grpc.keepalive_timeout_ms", 1000),
                ],
            )
        return channel

    async def _call(self, call: Callable[[grpc.aio.Channel, float], Awaitable[T]], timeout: float | None = None) -> T:
        last: Exception | None = None
        for step in range(len(self.endpoints)):
            index = (self._current + step) % len(self.endpoints)
            try:
                result = await call(self._channel(self.endpoints[index]), timeout or self.timeout)
            except TimeoutError as error:
                last = error
                continue
            except grpc.aio.AioRpcError as error:
                # etcd's answer to the request itself (a lease that is gone, a bad request)
                # is final; anything else (UNAVAILABLE: down or stopping; DEADLINE_EXCEEDED
                # or UNKNOWN "context deadline exceeded": no quorum behind that member) sends
                # the call to the next endpoint.
                if error.code() in REJECTIONS:
                    raise EtcdRejected(f"etcd refused the request: {error.code().name} {error.details()}") from None
                last = error
                continue
            self._current = index
            return result
        detail = last.details() if isinstance(last, grpc.aio.AioRpcError) else repr(last)
        raise EtcdUnavailable(f"no etcd endpoint answered ({', '.join(self.endpoints)}): {detail}")

    async def get(self, key: str) -> tuple[KeyValue | None, int]:
        """The key (None if absent) and the store's revision when read."""

        async def call(channel, timeout):
            reply = await rpc.KVStub(channel).Range(rpc.RangeRequest(key=key.encode()), timeout=timeout)
            return (_kv(reply.kvs[0]) if reply.kvs else None), reply.header.revision

        return await self._call(call)

    async def get_prefix(self, prefix: str) -> list[KeyValue]:
        async def call(channel, timeout):
            request = rpc.RangeRequest(key=prefix.encode(), range_end=prefix_end(prefix.encode()))
            reply = await rpc.KVStub(channel).Range(request, timeout=timeout)
            return [_kv(item) for item in reply.kvs]

        return await self._call(call)

    async def put(self, key: str, value: bytes, lease: int = 0) -> None:
        async def call(channel, timeout):
            await rpc.KVStub(channel).Put(rpc.PutRequest(key=key.encode(), value=value, lease=lease), timeout=timeout)

        await self._call(call)

    async def delete(self, key: str) -> None:
        async def call(channel, timeout):
            await rpc.KVStub(channel).DeleteRange(rpc.DeleteRangeRequest(key=key.encode()), timeout=timeout)

        await self._call(call)

    async def create(self, key: str, value: bytes, lease: int = 0, also: dict[str, str] | None = None) -> bool:
        """Puts the key only if it does not exist (etcd's create_revision == 0): the one
        atomic step by which leadership is taken; `also` are put in the same transaction.
        True if this call created it."""

        async def call(channel, timeout):
            puts = [rpc.PutRequest(key=key.encode(), value=value, lease=lease)]
            puts += [rpc.PutRequest(key=k.encode(), value=v.encode()) for k, v in (also or {}).items()]
            request = rpc.TxnRequest(
                compare=[
                    rpc.Compare(
                        key=key.encode(), target=rpc.Compare.CREATE, result=rpc.Compare.EQUAL, create_revision=0
                    )
                ],
                success=[rpc.RequestOp(request_put=put) for put in puts],
            )
            return (await rpc.KVStub(channel).Txn(request, timeout=timeout)).succeeded

        return await self._call(call)

    async def put_if_lease(self, key: str, value: bytes, lease: int) -> bool:
        """Replaces the key only while it is still held under `lease` (our own leadership)."""

        async def call(channel, timeout):
            request = rpc.TxnRequest(
                compare=[
                    rpc.Compare(key=key.encode(), target=rpc.Compare.LEASE, result=rpc.Compare.EQUAL, lease=lease)
                ],
                success=[rpc.RequestOp(request_put=rpc.PutRequest(key=key.encode(), value=value, lease=lease))],
            )
            return (await rpc.KVStub(channel).Txn(request, timeout=timeout)).succeeded

        return await self._call(call)

    async def grant(self, ttl: int) -> int:
        async def call(channel, timeout):
            return (await rpc.LeaseStub(channel).LeaseGrant(rpc.LeaseGrantRequest(TTL=ttl), timeout=timeout)).ID

        return await self._call(call)

    async def keep_alive(self, lease: int) -> int:
        """Renews the lease once; its remaining TTL in seconds (0: it had expired)."""
        try:
            return await self._keep_alive(lease)
        except EtcdRejected:  # "requested lease not found": expired
            return 0

    async def _keep_alive(self, lease: int) -> int:

        async def call(channel, timeout):
            stream = rpc.LeaseStub(channel).LeaseKeepAlive(iter([rpc.LeaseKeepAliveRequest(ID=lease)]), timeout=timeout)
            async for reply in stream:
                return reply.TTL
            return 0

        return await self._call(call)

    async def leader_endpoint(self) -> str | None:
        """The endpoint whose member is etcd's Raft leader now (None if none answers)."""
        for endpoint in self.endpoints:
            try:
                reply = await rpc.MaintenanceStub(self._channel(endpoint)).Status(
                    rpc.StatusRequest(), timeout=self.timeout
                )
            except grpc.aio.AioRpcError:
                continue
            if reply.leader and reply.leader == reply.header.member_id:
                return endpoint
        return None

    async def time_to_live(self, lease: int) -> int:
        """The lease's remaining TTL in seconds (-1: it no longer exists)."""

        async def call(channel, timeout):
            return (
                await rpc.LeaseStub(channel).LeaseTimeToLive(rpc.LeaseTimeToLiveRequest(ID=lease), timeout=timeout)
            ).TTL

        return await self._call(call)

    async def revoke(self, lease: int) -> None:
        """Ends the lease and deletes its keys; a lease already gone is no error."""

        async def call(channel, timeout):
            await rpc.LeaseStub(channel).LeaseRevoke(rpc.LeaseRevokeRequest(ID=lease), timeout=timeout)

        with contextlib.suppress(EtcdRejected):
            await self._call(call)

    async def wait_change(self, key: str, after_revision: int, timeout: float) -> bool:
        """Waits until `key` changes after `after_revision`, or `timeout`; True if it did
        (or the watch could not be kept: the caller reads the key again either way). A
        fresh watch stream each time: simple, and it survives the loss of a member."""
        endpoint = self.endpoints[self._current]
        request = rpc.WatchRequest(
            create_request=rpc.WatchCreateRequest(key=key.encode(), start_revision=after_revision + 1)
        )
        done = asyncio.Event()

        async def requests():
            yield request
            await done.wait()  # etcd ends a watch whose request stream the client closes

        stream = rpc.WatchStub(self._channel(endpoint)).Watch(requests(), timeout=timeout)
        try:
            async for reply in stream:
                if reply.events or reply.canceled:
                    return True
            return True
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                return False
            self._current = (self._current + 1) % len(self.endpoints)
            return True
        finally:
            done.set()
            stream.cancel()

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()
