"""API keys: ``vxk_<id>_<secret>``, stored as the SHA-256 of the whole key.

The id (12 hex digits) is public: it names the key in listings, the audit log and
``voxmesh keys revoke ID``. The secret is 32 random bytes (urlsafe base64), so a plain
SHA-256 is enough (no password stretching needed for 256 bits of entropy); comparison is
constant-time. The key itself is shown once, at creation, and never stored or logged.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

__all__ = ["KEY_PREFIX", "ParsedKey", "hash_key", "matches", "new_key", "parse_key"]

KEY_PREFIX = "vxk_"
_KEY = re.compile(r"^vxk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


class ParsedKey:
    __slots__ = ("id", "key")

    def __init__(self, key_id: str, key: str) -> None:
        self.id = key_id
        self.key = key

    def __repr__(self) -> str:  # never the secret
        return f"ParsedKey(id={self.id!r})"


def new_key() -> tuple[str, str]:
    """A fresh ``(id, key)``."""
    key_id = secrets.token_hex(6)
    return key_id, f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


def parse_key(key: str) -> ParsedKey | None:
    m = _KEY.match(key)
    return None if m is None else ParsedKey(m.group(1), key)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def matches(key: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_key(key), stored_hash)
