"""Completion webhooks, signed: ``X-Voxmesh-Signature: sha256=<hex HMAC-SHA256 of the body>``.

The receiver recomputes the HMAC of the raw body with the shared ``JobsSettings.webhook_secret``
and compares in constant time (:func:`verify_signature`). A runner claims a delivery atomically
(``webhook_sent`` set with a conditional UPDATE) so concurrent runners send it once; a failed
attempt gives the claim back and idle runners retry, at most ``max_attempts`` times per
process with a growing pause. Limit: a runner killed between claim and send loses that
webhook (at-most-once across crashes; clients can poll ``GET /v1/jobs/{id}``). The body carries the job id, state, duration and error.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import Any

import aiohttp

from voxmesh.clock import Clock, monotonic
from voxmesh.observability.requestid import REQUEST_ID
from voxmesh.storage.db import JobDB
from voxmesh.storage.schema import JobRow

__all__ = ["SIGNATURE_HEADER", "WebhookSender", "sign_body", "verify_signature", "webhook_body"]

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-Voxmesh-Signature"


def sign_body(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    return header is not None and hmac.compare_digest(sign_body(secret, body), header)


def webhook_body(job: JobRow) -> bytes:
    payload: dict[str, Any] = {
        "id": job.id,
        "object": "job",
        "state": job.state.value,
        "duration_s": job.duration_s,
        "error": job.error,
        "result_url": f"/v1/jobs/{job.id}/result" if job.result_key else None,
    }
    return json.dumps(payload, sort_keys=True).encode()


class WebhookSender:
    def __init__(
        self, secret: str | None, *, timeout_s: float = 10.0, max_attempts: int = 5, clock: Clock = monotonic
    ) -> None:
        self.secret = secret
        self.clock = clock
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.max_attempts = max_attempts
        self._tries: dict[str, tuple[int, float]] = {}

    async def send(self, job: JobRow) -> bool:
        """POST once; True when the receiver took it (2xx) or refused it for good (4xx)."""
        token = REQUEST_ID.set(job.trace_id)  # this delivery's log lines carry the job's id
        try:
            return await self._send(job)
        finally:
            REQUEST_ID.reset(token)

    async def _send(self, job: JobRow) -> bool:
        assert job.webhook_url is not None
        body = webhook_body(job)
        headers = {"Content-Type": "application/json", "X-Request-Id": job.trace_id}
        if self.secret:
            headers[SIGNATURE_HEADER] = sign_body(self.secret, body)
        try:
            async with aiohttp.ClientSession(timeout=self.timeout) as session, session.post(
                job.webhook_url, data=body, headers=headers
            ) as resp:
                if 400 <= resp.status < 500 and resp.status not in (408, 429):
                    log.warning("webhook for job %s refused with %d; not retried", job.id, resp.status)
                    return True
                return resp.status < 300
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("webhook for job %s failed: %s", job.id, exc)
            return False

    async def deliver_pending(self, db: JobDB) -> None:
        now = self.clock()
        for job in await db.pending_webhooks():
            tries, not_before = self._tries.get(job.id, (0, 0.0))
            if now < not_before:
                continue
            if not await db.claim_webhook(job.id):
                continue  # another runner is delivering it
            if await self.send(job) or tries + 1 >= self.max_attempts:
                self._tries.pop(job.id, None)
            else:
                await db.release_webhook(job.id)
                self._tries[job.id] = (tries + 1, now + 2.0 ** (tries + 1))
