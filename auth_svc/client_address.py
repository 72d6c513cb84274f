"""Which client a call comes from, for the per-address login locks.

A call that reaches auth_svc through the gateway has the gateway as its peer; Envoy
(`use_remote_address`) appends the address it saw to `x-forwarded-for`, so the last entry is
the client. That header is believed only from a trusted peer: a worker Unix socket (owner-
only: this user's Envoy, tkv_common/owner_only.py) or an address in TKV_TRUSTED_PROXIES.
From anyone else it is the client's own claim, and the TCP peer's address is used instead.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from tkv_common.settings import ConfigError, Env

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def proxies_from_env(env: Env) -> tuple[Network, ...]:
    """TKV_TRUSTED_PROXIES: comma-separated addresses or CIDR blocks (default: none)."""
    raw = env.str("TKV_TRUSTED_PROXIES")
    try:
        return tuple(ipaddress.ip_network(item.strip()) for item in raw.split(",") if item.strip())
    except ValueError as exc:
        raise ConfigError(f"TKV_TRUSTED_PROXIES: {exc}") from None


def _peer_ip(peer: str) -> str | None:
    """The IP of a grpc peer string (`ipv4:127.0.0.1:5000`, `ipv6:[::1]:5000`), or None for
    a Unix socket (`unix:...`)."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rsplit(":", 1)[0]
    if kind == "ipv6":
        return rest.rsplit(":", 1)[0].strip("[]")
    return None


def client_of(peer: str, forwarded_for: Sequence[str], trusted: Sequence[Network]) -> str:
    """The client's address as a string: the last x-forwarded-for entry when the peer is a
    trusted proxy, else the peer itself ("local" for an untrusted-header Unix socket)."""
    ip = _peer_ip(peer)
    trusted_peer = ip is None or any(ipaddress.ip_address(ip) in network for network in trusted)
    if trusted_peer and forwarded_for:
        last = forwarded_for[-1].split(",")[-1].strip()
        try:
            return str(ipaddress.ip_address(last))
        except ValueError:
            pass  # not an address: fall back to the peer
    return ip or "local"
