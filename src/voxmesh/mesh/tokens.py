"""One-time join tokens: minted by the gateway (or the CLI), stored hashed, single use, expiring.

A token reads ``vxj1.<id>.<secret>`` (id: 8 hex digits, secret: 32 random bytes, base64url).
Only ``sha256(secret)`` is stored, next to the expiry, the identity name it may claim (or
None: the joiner picks) and, once used, when and by whom. Secrets are high-entropy random
values, so a fast hash is enough (as for kubeadm bootstrap tokens).

Rules, checked in this order by :func:`check` (pure; the store applies it atomically)::

    malformed / unknown id / wrong secret  -> UNKNOWN     401  (indistinguishable on purpose)
    already used                           -> USED        403
    now >= expires_at                      -> EXPIRED     401
    bound to another name                  -> WRONG_NAME  403
    otherwise                              -> OK          (the store marks it used)

Stores: :class:`MemoryTokenStore` (one process) and :class:`FileTokenStore` (a JSON file in the
data directory, read-modify-written under an flock and replaced atomically, so the CLI can mint
tokens that a running gateway redeems, and two redeemers never both win). Records are dropped
a day after they expire.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import json
import secrets
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Protocol

from voxmesh.mesh._files import PRIVATE, atomic_write, locked

__all__ = [
    "FileTokenStore",
    "MemoryTokenStore",
    "TokenRecord",
    "TokenStore",
    "TokenVerdict",
    "check",
    "new_token",
    "split_token",
]

_PREFIX = "vxj1"
_KEEP_EXPIRED_S = 24 * 3600.0


class TokenVerdict(enum.Enum):
    OK = "ok"
    UNKNOWN = "unknown"
    USED = "used"
    EXPIRED = "expired"
    WRONG_NAME = "wrong_name"


@dataclass(frozen=True)
class TokenRecord:
    token_id: str
    secret_sha256: str
    expires_at: float
    name: str | None = None
    used_at: float | None = None
    used_by: str | None = None


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_token(now: float, ttl_s: float, name: str | None = None) -> tuple[str, TokenRecord]:
    """A fresh token string and the record to store for it."""
    token_id = secrets.token_hex(4)
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    return f"{_PREFIX}.{token_id}.{secret}", TokenRecord(token_id, _hash(secret), now + ttl_s, name)


def split_token(token: str) -> tuple[str, str] | None:
    parts = token.strip().split(".")
    if len(parts) != 3 or parts[0] != _PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


def check(record: TokenRecord | None, secret: str, name: str, now: float) -> TokenVerdict:
    if record is None or not hmac.compare_digest(record.secret_sha256, _hash(secret)):
        return TokenVerdict.UNKNOWN
    if record.used_at is not None:
        return TokenVerdict.USED
    if now >= record.expires_at:
        return TokenVerdict.EXPIRED
    if record.name is not None and record.name != name:
        return TokenVerdict.WRONG_NAME
    return TokenVerdict.OK


class TokenStore(Protocol):
    def add(self, record: TokenRecord) -> None: ...

    def get(self, token_id: str) -> TokenRecord | None: ...

    def consume(self, token_id: str, secret: str, name: str, now: float) -> tuple[TokenVerdict, TokenRecord | None]:
        """Atomically :func:`check` and, on OK, mark used; returns the verdict and the record."""
        ...


class MemoryTokenStore:
    def __init__(self) -> None:
        self._records: dict[str, TokenRecord] = {}

    def add(self, record: TokenRecord) -> None:
        self._records[record.token_id] = record

    def get(self, token_id: str) -> TokenRecord | None:
        return self._records.get(token_id)

    def consume(self, token_id: str, secret: str, name: str, now: float) -> tuple[TokenVerdict, TokenRecord | None]:
        record = self._records.get(token_id)
        verdict = check(record, secret, name, now)
        if verdict is TokenVerdict.OK and record is not None:
            self._records[token_id] = replace(record, used_at=now, used_by=name)
        return verdict, record


class FileTokenStore:
    """Records in one JSON file (0600); every change under an flock, written atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _load(self) -> dict[str, TokenRecord]:
        try:
            raw = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        return {r["token_id"]: TokenRecord(**r) for r in raw.get("tokens", [])}

    def _save(self, records: dict[str, TokenRecord], now: float | None) -> None:
        keep = [asdict(r) for r in records.values() if now is None or r.expires_at + _KEEP_EXPIRED_S > now]
        atomic_write(self.path, json.dumps({"tokens": keep}, indent=1).encode(), PRIVATE)

    def add(self, record: TokenRecord) -> None:
        with locked(self.path.parent, f".{self.path.name}.lock"):
            records = self._load()
            records[record.token_id] = record
            self._save(records, None)

    def get(self, token_id: str) -> TokenRecord | None:
        return self._load().get(token_id)

    def consume(self, token_id: str, secret: str, name: str, now: float) -> tuple[TokenVerdict, TokenRecord | None]:
        with locked(self.path.parent, f".{self.path.name}.lock"):
            records = self._load()
            record = records.get(token_id)
            verdict = check(record, secret, name, now)
            if verdict is TokenVerdict.OK and record is not None:
                records[token_id] = replace(record, used_at=now, used_by=name)
                self._save(records, now)
        return verdict, record
