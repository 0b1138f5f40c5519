"""Crash-safe file writes and a cross-process lock for the mesh's key material.

``atomic_write`` writes to a temporary file in the same directory, fsyncs it, renames it over
the target and fsyncs the directory: after a crash the target holds either the old bytes or
the new bytes, never a prefix. Private keys are created with their final mode (0600) so they
are never readable by others, not even for an instant.

``locked`` serialises the few read-modify-write sequences (creating the CA, redeeming a join
token) between processes sharing a data directory with ``fcntl.flock`` (POSIX only; advisory,
so every writer must use it).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

__all__ = ["PRIVATE", "PUBLIC", "atomic_write", "locked"]

PRIVATE = 0o600
PUBLIC = 0o644


def atomic_write(path: Path, data: bytes, mode: int = PUBLIC) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)  # O_CREAT's mode is masked by the umask and ignored for a stale tmp
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)


@contextlib.contextmanager
def locked(directory: Path, name: str = ".lock") -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / name, os.O_RDWR | os.O_CREAT, PRIVATE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the flock
