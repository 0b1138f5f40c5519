"""The object store: a small async protocol, key validation and signed download URLs.

Keys are relative, slash-separated names such as ``chunks/ab/abcd.wav``. They are validated
before any backend sees them (see :func:`validate_key`) so a key can never escape the store's
root on the filesystem backend, whatever a caller passes in.

Backends: :class:`~voxmesh.storage.fs.FsObjectStore` (default, in the data dir),
:class:`~voxmesh.storage.s3.S3ObjectStore` (production) and
:class:`~voxmesh.storage.memory.MemoryObjectStore` (tests). The filesystem and memory
backends presign with :class:`UrlSigner`: an HMAC-SHA256 over key and expiry, served by the
``GET /v1/objects/{key}`` route (``voxmesh.jobs.routes``); S3 presigns natively.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from pathlib import Path
from typing import Protocol, runtime_checkable
from urllib.parse import quote

from voxmesh.clock import Clock, wall
from voxmesh.errors import Forbidden, InvalidRequest

__all__ = ["MAX_KEY_LENGTH", "ObjectStore", "UrlSigner", "load_or_create_secret", "validate_key"]

MAX_KEY_LENGTH = 512
_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe object key, else raise :class:`InvalidRequest`.

    Allowed: 1-512 chars of ``[A-Za-z0-9._-]`` in non-empty ``/``-separated segments, each
    starting with a letter or digit (so no ``.``/``..`` segments, no hidden files, no leading
    slash). Rejects NUL, backslash, absolute paths and traversal outright.
    """
    if not isinstance(key, str) or not key:
        raise InvalidRequest("object key must be a non-empty string", param="key")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidRequest(f"object key longer than {MAX_KEY_LENGTH} characters", param="key")
    if "\x00" in key or "\\" in key:
        raise InvalidRequest("object key must not contain NUL or backslash", param="key")
    if key.startswith("/") or ".." in key:
        raise InvalidRequest("object key must be relative and must not contain '..'", param="key")
    for segment in key.split("/"):
        if not _SEGMENT.match(segment):
            raise InvalidRequest(
                f"object key segment {segment!r} is invalid: use letters, digits, '.', '_' and '-', "
                "starting with a letter or digit",
                param="key",
            )
    return key


@runtime_checkable
class ObjectStore(Protocol):
    """Async object storage. ``get`` of a missing key raises ``NotFound``; ``delete`` is idempotent."""

    async def put(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> None: ...

    async def get(self, key: str) -> bytes: ...

    async def exists(self, key: str) -> bool: ...

    async def delete(self, key: str) -> None: ...

    async def presign_get(self, key: str, ttl_s: float) -> str: ...

    async def list(self, prefix: str = "") -> list[str]: ...


class UrlSigner:
    """Signs ``GET /v1/objects/{key}?expires=E&sig=S`` where ``S = HMAC-SHA256(secret, key "\\n" E)``.

    ``E`` is a wall-clock epoch second; :meth:`verify` rejects an expired or tampered URL
    with :class:`Forbidden`. Limit: a URL cannot be revoked before it expires (short TTLs).
    """

    def __init__(self, secret: bytes, *, base_url: str = "", clock: Clock = wall) -> None:
        if len(secret) < 16:
            raise ValueError("URL signing secret must be at least 16 bytes")
        self._secret = secret
        self._base = base_url.rstrip("/")
        self._clock = clock

    def _sig(self, key: str, expires: int) -> str:
        return hmac.new(self._secret, f"{key}\n{expires}".encode(), hashlib.sha256).hexdigest()

    def sign(self, key: str, ttl_s: float) -> str:
        validate_key(key)
        expires = int(self._clock() + max(1.0, ttl_s))
        return f"{self._base}/v1/objects/{quote(key)}?expires={expires}&sig={self._sig(key, expires)}"

    def verify(self, key: str, expires: str, sig: str) -> None:
        validate_key(key)
        try:
            exp = int(expires)
        except ValueError:
            raise Forbidden("signed URL has a malformed 'expires'") from None
        if not hmac.compare_digest(self._sig(key, exp), sig):
            raise Forbidden("signed URL signature does not match: request a new URL")
        if self._clock() > exp:
            raise Forbidden("signed URL has expired: request a new one from GET /v1/jobs/{id}/result")


def load_or_create_secret(path: Path) -> bytes:
    """The signing secret kept in ``path`` (created 0600 on first use, so every process of one
    data dir signs alike)."""
    try:
        data = path.read_bytes().strip()
        if len(data) >= 32:
            return data
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    tmp.write_bytes(secrets.token_hex(32).encode())
    tmp.chmod(0o600)
    try:
        # link() fails if another process won the race; then read theirs.
        import os

        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_bytes().strip()
