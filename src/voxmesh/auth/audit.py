"""The audit log: one JSON object per line for admin actions and authentication failures.

Fields: ``ts`` (epoch seconds), ``event`` (``auth_failure`` | ``admin``), ``outcome``
(``denied`` | an HTTP status | ``ok``), ``who`` (subject and tenant, or the remote address
when nobody authenticated), ``what`` (method and path, or the CLI command), ``reason``.
Written to a file (``auth.audit_file``, default ``<data_dir>/audit.log``) and to the
``voxmesh.audit`` logger. Callers pass only what they mean to record; nothing here ever
sees a token, key or secret (the guard records a key's public id, never the key).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

from voxmesh.clock import Clock

__all__ = ["AuditLog"]

log = logging.getLogger("voxmesh.audit")


class AuditLog:
    def __init__(self, path: Path | None, *, clock: Clock = time.time) -> None:
        self.path = path
        self._clock = clock
        self._lock = threading.Lock()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

    def record(self, event: str, outcome: str | int, *, what: str, **who: Any) -> None:
        entry = {"ts": round(self._clock(), 3), "event": event, "outcome": outcome, "what": what,
                 **{k: v for k, v in who.items() if v is not None}}
        line = json.dumps(entry, sort_keys=True)
        log.info("%s", line)
        if self.path is None:
            return
        with self._lock, self.path.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")
