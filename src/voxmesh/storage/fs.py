"""Filesystem object store (the default): one file per key under a root directory.

Writes are atomic and durable: data goes to a temp file in ``<root>/.tmp``, is fsynced,
renamed over the target (``os.replace`` is atomic on POSIX) and the directory is fsynced,
so a reader sees the old object or the new one, never a torn file, even across kill -9 or
power loss. Blocking calls run in a thread. Keys are validated (:func:`validate_key`) and
the resolved path is checked to stay under the root. Limit: one machine (or a shared
POSIX filesystem); presigned URLs are served by the gateway's ``/v1/objects`` route.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from pathlib import Path

from voxmesh.errors import InvalidRequest, NotFound
from voxmesh.storage.objects import UrlSigner, validate_key

__all__ = ["FsObjectStore"]


class FsObjectStore:
    def __init__(self, root: Path, signer: UrlSigner) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._tmp = self.root / ".tmp"
        self._tmp.mkdir(exist_ok=True)
        self.signer = signer

    def path_for(self, key: str) -> Path:
        path = (self.root / validate_key(key)).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise InvalidRequest("object key escapes the store", param="key")
        return path

    def _put(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._tmp / f"{path.name}.{secrets.token_hex(8)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    async def put(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> None:
        await asyncio.to_thread(self._put, self.path_for(key), bytes(data))

    async def get(self, key: str) -> bytes:
        path = self.path_for(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except (FileNotFoundError, IsADirectoryError):
            raise NotFound(f"object {key!r} not found") from None

    async def exists(self, key: str) -> bool:
        return self.path_for(key).is_file()

    async def delete(self, key: str) -> None:
        self.path_for(key).unlink(missing_ok=True)

    async def presign_get(self, key: str, ttl_s: float) -> str:
        return self.signer.sign(key, ttl_s)

    def _list(self, prefix: str) -> list[str]:
        out = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel = Path(dirpath).relative_to(self.root)
            for name in filenames:
                key = (rel / name).as_posix() if str(rel) != "." else name
                if key.startswith(prefix):
                    out.append(key)
        return sorted(out)

    async def list(self, prefix: str = "") -> list[str]:
        return await asyncio.to_thread(self._list, prefix)
