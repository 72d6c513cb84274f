"""Page tokens of ListPairs (AIP-158): opaque to clients, bound to the listing they came from.

A token holds the last key of its page and the listing's namespace, prefix and keys_only,
with a MAC so that an altered token, or one reused with another listing, is refused
instead of silently listing something else. Access is checked on every call regardless:
the MAC protects the listing's consistency, not the data.

The MAC key is derived from a secret every kv_svc worker already shares (its Tarantool
password), so tokens work across workers and restarts without one more secret to manage;
changing that password ends the pages in flight, which clients restart.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass

_MAC_BYTES = 16


@dataclass(frozen=True)
class Listing:
    """What a page token is bound to."""

    namespace: str
    prefix: str
    keys_only: bool


class InvalidPageToken(ValueError):
    """A token this service did not issue for that listing."""


class PageTokens:
    def __init__(self, secret: str):
        self._key = hmac.new(secret.encode(), b"tkv kv_svc page tokens v1", hashlib.sha256).digest()

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:_MAC_BYTES]

    def issue(self, listing: Listing, last_key: str) -> str:
        payload = json.dumps(
            [listing.namespace, listing.prefix, listing.keys_only, last_key], ensure_ascii=False, separators=(",", ":")
        ).encode()
        return base64.urlsafe_b64encode(self._mac(payload) + payload).rstrip(b"=").decode()

    def last_key(self, token: str, listing: Listing) -> str:
        """The key the token's page ended with; InvalidPageToken when it was altered or
        belongs to another listing."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except ValueError:
            raise InvalidPageToken("not base64url") from None
        mac, payload = raw[:_MAC_BYTES], raw[_MAC_BYTES:]
        if not hmac.compare_digest(mac, self._mac(payload)):
            raise InvalidPageToken("altered or issued elsewhere")
        namespace, prefix, keys_only, last_key = json.loads(payload)
        if Listing(namespace, prefix, keys_only) != listing:
            raise InvalidPageToken("issued for another namespace, prefix or keys_only")
        return last_key
