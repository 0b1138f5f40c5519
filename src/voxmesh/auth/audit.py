"""The audit log: one JSON object per line for admin actions and authentication failures.

Fields: ``ts`` (epoch seconds), ``event`` (``auth_failure`` | ``admin``), ``outcome``
(``denied`` | an HTTP status | ``ok``), ``who`` (subject and tenant, or the remote address
when nobody authenticated), ``what`` (method and path, or the CLI command), ``reason``.
Written to a file (``auth.audit_file``, default ``<data_dir>/audit.log``) and to the
``voxmesh.audit`` logger. Callers pass only what they mean to record; nothing here ever
sees a token, key or secret (the guard records a key's public id, never the key).

Refused credentials can come in floods (credential stuffing): ``auth_failure`` lines are
limited to ``burst`` at once refilled at ``per_s`` a second (a token bucket on the injected
clock); the next line written records how many were dropped (``suppressed``). Admin actions
are never dropped.
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
    def __init__(self, path: Path | None, *, clock: Clock = time.time, per_s: float = 20.0,
                 burst: float = 100.0) -> None:
        self.path = path
        self._clock = clock
        self._lock = threading.Lock()
        self.per_s, self.burst = per_s, burst
        self._tokens = burst
        self._at: float | None = None
        self.suppressed = 0
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

    def _admit(self, now: float) -> bool:
        if self._at is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.per_s)
        self._at = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    def record(self, event: str, outcome: str | int, *, what: str, **who: Any) -> None:
        now = self._clock()
        if event == "auth_failure" and not self._admit(now):
            self.suppressed += 1
            return
        entry = {"ts": round(now, 3), "event": event, "outcome": outcome, "what": what,
                 **{k: v for k, v in who.items() if v is not None}}
        if self.suppressed:
            entry["suppressed"], self.suppressed = self.suppressed, 0
        line = json.dumps(entry, sort_keys=True)
        log.info("%s", line)
        if self.path is None:
            return
        with self._lock, self.path.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")
