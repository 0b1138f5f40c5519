"""In-memory object store for unit tests (ships in the package; not durable)."""

from __future__ import annotations

import secrets

from voxmesh.errors import NotFound
from voxmesh.storage.objects import UrlSigner, validate_key

__all__ = ["MemoryObjectStore"]


class MemoryObjectStore:
    """A dict of key -> bytes with the :class:`ObjectStore` semantics; ``puts`` counts writes."""

    def __init__(self, signer: UrlSigner | None = None) -> None:
        self.objects: dict[str, bytes] = {}
        self.content_types: dict[str, str] = {}
        self.puts = 0
        self.signer = signer or UrlSigner(secrets.token_bytes(32))

    async def put(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> None:
        validate_key(key)
        self.objects[key] = bytes(data)
        self.content_types[key] = content_type
        self.puts += 1

    async def get(self, key: str) -> bytes:
        validate_key(key)
        try:
            return self.objects[key]
        except KeyError:
            raise NotFound(f"object {key!r} not found") from None

    async def exists(self, key: str) -> bool:
        return validate_key(key) in self.objects

    async def delete(self, key: str) -> None:
        self.objects.pop(validate_key(key), None)

    async def presign_get(self, key: str, ttl_s: float) -> str:
        return self.signer.sign(key, ttl_s)

    async def list(self, prefix: str = "") -> list[str]:
        return sorted(k for k in self.objects if k.startswith(prefix))
