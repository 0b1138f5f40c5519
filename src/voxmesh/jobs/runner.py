"""The job runner: lease a chunk, synthesize it, store it, and finish jobs.

Loop (:meth:`Runner.run`): lease a chunk from the queue; while working on it a heartbeat
renews the lease every ``lease_s / 3`` so only a *dead* runner's chunks expire and go to
another. The chunk's audio goes under its content-addressed key (a hash of text, voice,
model and options): if that object already exists (a crashed runner stored it, or another
job said the same thing) the engine is not called again, so a re-run never duplicates work
or data. Each engine call is first counted on the chunk row (``synth_calls``), durably.

Failures are classified (:func:`is_retryable`): 429/5xx/timeouts/unknown exceptions retry
with exponential backoff and full jitter (``retry_base_s * 2**(attempt-1)``, capped at
``retry_max_s``); a permanent error or the ``max_attempts``-th failure dead-letters the
chunk with its reason and fails the job. When the last chunk is done the job is stitched in
order, stored, marked succeeded, and its webhook fired. A job whose stitcher died is picked
up again by any idle runner (``jobs_to_finalize``). The loop survives a bad message or a
failing store/DB call (logged, short sleep) and stops only when cancelled; a chunk whose
message was not acked when the call failed gives it back to the queue (``Lease.release``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import uuid
from typing import Any

from voxmesh.clock import Clock, wall
from voxmesh.errors import VoxmeshError
from voxmesh.jobs.lifecycle import JobEvent, JobState
from voxmesh.jobs.queue import ChunkQueue, Lease, idle_wait
from voxmesh.jobs.stitch import CONTENT_TYPES, chunk_object_key, encode_result, pcm_to_wav, stitch, wav_to_pcm
from voxmesh.jobs.synth import JOB_TENANT, Synthesizer
from voxmesh.jobs.webhook import WebhookSender
from voxmesh.observability.requestid import REQUEST_ID
from voxmesh.settings import JobsSettings
from voxmesh.storage.db import JobDB
from voxmesh.storage.objects import ObjectStore
from voxmesh.storage.schema import JobRow

__all__ = ["Runner", "backoff_s", "is_retryable"]

log = logging.getLogger(__name__)


def is_retryable(exc: BaseException) -> bool:
    """Transient (retry) vs permanent (dead-letter now). Unknown errors are transient."""
    if isinstance(exc, VoxmeshError):
        return exc.status >= 500 or exc.status in (408, 429)
    return True


def backoff_s(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Full-jitter exponential backoff: uniform in [0.5, 1] x min(cap, base * 2**(attempt-1))."""
    ceiling = min(cap, base * 2.0 ** max(0, attempt - 1))
    return float(ceiling * (0.5 + 0.5 * rng.random()))


class Runner:
    def __init__(
        self,
        *,
        db: JobDB,
        store: ObjectStore,
        queue: ChunkQueue,
        synth: Synthesizer,
        settings: JobsSettings,
        owner: str | None = None,
        clock: Clock = wall,
        rng: random.Random | None = None,
        webhooks: WebhookSender | None = None,
    ) -> None:
        self.db = db
        self.store = store
        self.queue = queue
        self.synth = synth
        self.settings = settings
        # the pid in the name lets operators (and the crash test) tell whose lease it is
        self.owner = owner or f"runner-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.clock = clock
        self.rng = rng or random.Random()
        self.webhooks = webhooks or WebhookSender(settings.webhook_secret)
        self._jobs: dict[str, JobRow] = {}
        self.chunks_done = 0

    async def run(self) -> None:
        """Work until cancelled; the longer no work comes, the longer each wait (``idle_wait``)."""
        base = self.settings.poll_interval_s
        wait_s = base
        while True:
            try:
                worked = await self.step(wait_s=wait_s)
                wait_s = idle_wait(wait_s, worked, base, self.settings.idle_poll_max_s)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("runner %s: step failed; continuing", self.owner)
                await asyncio.sleep(base)

    async def step(self, wait_s: float = 0.0) -> bool:
        """Process one chunk if one comes within ``wait_s``; else do idle upkeep. True if work was done."""
        lease = await self.queue.lease(self.owner, self.settings.lease_s, wait_s)
        if lease is None:
            await self.upkeep()
            return False
        await self.process(lease)
        return True

    async def upkeep(self) -> None:
        for job_id in await self.db.jobs_to_finalize():
            await self.finalize(job_id)
        await self.webhooks.deliver_pending(self.db)

    async def _job(self, job_id: str) -> JobRow:
        job = self._jobs.get(job_id)
        if job is None:
            job = self._jobs[job_id] = await self.db.get_job(job_id)
            if len(self._jobs) > 256:
                self._jobs.pop(next(iter(self._jobs)))
        return job

    async def _heartbeat(self, chunk_id: int, lost: asyncio.Event) -> None:
        while True:
            await asyncio.sleep(self.settings.lease_s / 3)
            try:
                if not await self.db.renew(chunk_id, self.owner, self.clock(), self.settings.lease_s):
                    lost.set()
                    return
            except Exception:  # a DB blip: try again next beat; the lease still has 2/3 left
                log.warning("runner %s: lease renewal failed for chunk %s", self.owner, chunk_id, exc_info=True)

    async def process(self, lease: Lease) -> None:
        """Synthesize, store and complete one leased chunk (or retry / dead-letter it), then
        finalize its job if that was the last chunk. If anything raises before the chunk's
        message is acked (a DB restart under ``complete`` or ``retry``, a cancel), the message
        is released back to the queue: this runner lives on, and a broker with prefetch 1
        would otherwise never send it another message (see ``voxmesh.jobs.queue``)."""
        try:
            await self._process(lease)
        except BaseException:
            await lease.release()
            raise

    async def _process(self, lease: Lease) -> None:
        chunk = lease.chunk
        lost = asyncio.Event()
        beat = asyncio.create_task(self._heartbeat(chunk.id, lost))
        REQUEST_ID.set(f"job-{chunk.job_id}-c{chunk.idx}")  # this chunk's task: its logs and its request
        try:
            try:
                job = await self._job(chunk.job_id)
                JOB_TENANT.set(job.tenant)  # this chunk's task: its enrolled voice is the job tenant's
                REQUEST_ID.set(f"{job.trace_id}-c{chunk.idx}")  # the submission's id, where it had one
                key = chunk_object_key(chunk.cache_key)
                if await self.store.exists(key):
                    pcm, rate = wav_to_pcm(await self.store.get(key))
                else:
                    await self.db.count_synth_call(chunk.id, self.owner)
                    result = await self.synth.synthesize(
                        chunk.text, model=job.model, voice=job.voice, options=job.options
                    )
                    pcm, rate = result.pcm_s16le, result.sample_rate
                    await self.store.put(key, pcm_to_wav(pcm, rate), content_type="audio/wav")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await self._failed(lease, exc)
                return
            if await self.db.complete(chunk.id, self.owner, key, len(pcm) // 2, rate):
                self.chunks_done += 1
            elif lost.is_set():
                log.info("runner %s: lease on chunk %s was lost; another runner finishes it", self.owner, chunk.id)
            await lease.ack()
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
        progress = await self.db.progress(chunk.job_id)
        if progress.done == progress.total:
            await self.finalize(chunk.job_id)

    async def _failed(self, lease: Lease, exc: Exception) -> None:
        chunk = lease.chunk
        reason = f"{type(exc).__name__}: {exc}"
        if is_retryable(exc) and chunk.attempts < self.settings.max_attempts:
            delay = backoff_s(chunk.attempts, self.settings.retry_base_s, self.settings.retry_max_s, self.rng)
            if isinstance(exc, VoxmeshError) and exc.retry_after:
                delay = max(delay, exc.retry_after)
            log.warning("runner %s: chunk %s attempt %d failed (%s); retry in %.1fs",
                        self.owner, chunk.id, chunk.attempts, reason, delay)
            if await self.db.retry(chunk.id, self.owner, self.clock() + delay, reason):
                await self.queue.publish([chunk.id], delay_s=delay)
        else:
            why = f"dead after {chunk.attempts} attempt(s): {reason}"
            log.error("runner %s: chunk %s %s", self.owner, chunk.id, why)
            if await self.db.kill(chunk.id, self.owner, why):
                await self.db.try_transition_job(
                    chunk.job_id, JobEvent.FAIL, self.clock(), error=f"chunk {chunk.idx} {why}"
                )
                await self.webhooks.deliver_pending(self.db)
        await lease.ack()

    async def finalize(self, job_id: str) -> None:
        """Stitch a job whose chunks are all done, store the result, mark it succeeded."""
        job = await self.db.get_job(job_id)
        REQUEST_ID.set(job.trace_id)
        if job.state is not JobState.RUNNING:
            return
        chunks = await self.db.job_chunks(job_id)
        if any(c.audio_key is None for c in chunks):
            return
        parts = [wav_to_pcm(await self.store.get(c.audio_key)) for c in chunks if c.audio_key]
        stitched = stitch(parts, job.chapters)
        fmt = job.response_format
        result_key = f"results/{job_id}/audio.{fmt}"
        chapters_key = f"results/{job_id}/chapters.json"
        await self.store.put(result_key, encode_result(stitched, fmt), content_type=CONTENT_TYPES.get(fmt, "application/octet-stream"))
        await self.store.put(chapters_key, _chapters_json(stitched.chapters), content_type="application/json")
        if await self.db.try_transition_job(
            job_id, JobEvent.SUCCEED, self.clock(),
            result_key=result_key, chapters_key=chapters_key, duration_s=stitched.duration_s,
        ):
            log.info("job %s succeeded: %.1f s of audio in %d chunks", job_id, stitched.duration_s, len(chunks))
            await self.webhooks.deliver_pending(self.db)


def _chapters_json(chapters: list[dict[str, Any]]) -> bytes:
    import json

    return json.dumps({"chapters": chapters}, indent=1).encode()
