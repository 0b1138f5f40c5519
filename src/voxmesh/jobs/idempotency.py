"""Idempotent job submission: ``POST /v1/jobs`` with an ``Idempotency-Key`` header.

A client whose submission's answer was lost (a timeout, a dropped connection, the gateway
restarting) cannot tell whether the job exists. With a key it simply sends the same request
again and gets the same job back, never a second one:

* first use of a key (per tenant): the job is created (201) and the key is stored with a
  fingerprint of the request (:func:`fingerprint`);
* the same key with the same request: the existing job (200, ``Idempotent-Replayed: true``),
  whatever its state;
* the same key with a different request: 409, because the key names another job;
* two submissions with one key at once: the database's unique index on ``(tenant, key)``
  lets one insert win; the other answers as a replay of it;
* a submission the queue refused (503) gives its key up, so the retry creates the job.

Keys are scoped to the tenant: two tenants may use the same key without seeing each other's
jobs. They are kept with the job (as long as the job row lives). Pure helpers here; the
service (:mod:`voxmesh.jobs.service`) and the database (:mod:`voxmesh.storage.db`) apply them.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from voxmesh.errors import InvalidRequest

__all__ = ["HEADER", "MAX_KEY_CHARS", "REPLAYED_HEADER", "check_key", "fingerprint"]

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_CHARS = 255


def check_key(key: str | None) -> str | None:
    """The key as sent, or None when absent; 400 when it cannot be one (empty, too long,
    not printable ASCII)."""
    if key is None:
        return None
    if not key or len(key) > MAX_KEY_CHARS or not all(0x20 < ord(c) < 0x7F for c in key):
        raise InvalidRequest(
            f"'{HEADER}' must be 1-{MAX_KEY_CHARS} printable ASCII characters without spaces (a UUID is a good key)",
            param=HEADER)
    return key


def fingerprint(fields: dict[str, Any], data: bytes | None = None) -> str:
    """SHA-256 over the request's fields (canonical JSON) and the uploaded file's bytes."""
    h = hashlib.sha256(json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str).encode())
    if data is not None:
        h.update(b"\0file\0")
        h.update(hashlib.sha256(data).digest())
    return h.hexdigest()
