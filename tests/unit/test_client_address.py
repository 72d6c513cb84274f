"""Which client a login is attributed to (auth_svc/client_address.py)."""

import ipaddress

import pytest

from auth_svc.client_address import client_of, proxies_from_env
from tkv_common.settings import ConfigError, Env

COMPOSE = (ipaddress.ip_network("172.28.0.0/16"),)


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "client"),
    [
        # A direct client: its own address, whatever header it sends.
        ("ipv4:127.0.0.2:5000", [], (), "127.0.0.2"),
        ("ipv4:127.0.0.2:5000", ["203.0.113.9"], (), "127.0.0.2"),
        ("ipv6:[::1]:5000", ["203.0.113.9"], (), "::1"),
        # Through the worker socket (only this user's Envoy): the last entry Envoy appended.
        ("unix:/var/run/kv_svc-0.sock", ["203.0.113.9, 127.0.0.3"], (), "127.0.0.3"),
        ("unix:", ["forged, 127.0.0.4"], (), "127.0.0.4"),
        ("unix:", [], (), "local"),
        ("unix:", ["not-an-address"], (), "local"),
        # A configured proxy network is trusted like the socket.
        ("ipv4:172.28.0.5:5000", ["198.51.100.7"], COMPOSE, "198.51.100.7"),
        ("ipv4:172.29.0.5:5000", ["198.51.100.7"], COMPOSE, "172.29.0.5"),
    ],
)
def test_the_client_is_the_peer_unless_a_trusted_proxy_names_it(peer, forwarded, trusted, client):
    assert client_of(peer, forwarded, trusted) == client


def test_trusted_proxies_are_addresses_or_networks():
    assert proxies_from_env(Env({"TKV_TRUSTED_PROXIES": "10.0.0.1, 172.28.0.0/16"})) == (
        ipaddress.ip_network("10.0.0.1/32"),
        ipaddress.ip_network("172.28.0.0/16"),
    )
    assert proxies_from_env(Env({})) == ()
    with pytest.raises(ConfigError, match="TKV_TRUSTED_PROXIES"):
        proxies_from_env(Env({"TKV_TRUSTED_PROXIES": "gateway"}))
