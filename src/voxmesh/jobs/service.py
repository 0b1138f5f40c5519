"""JobService: create, read, list and cancel jobs; the API routes and the CLI go through it.

``create`` validates everything (format, voice/model via an optional catalog, options,
webhook URL), parses and chunks the input (``ingest``), and only then writes the job and
its chunks in one transaction and publishes the chunk ids; so a bad input stores nothing.
If the queue refuses the chunks the job is marked failed and the caller gets a 503.
An ``Idempotency-Key`` makes a repeated submission return the first one's job
(:mod:`voxmesh.jobs.idempotency`).
Status carries progress: chunks done/total, audio seconds so far, and an ETA from the
observed characters-per-second rate since the job started (None until a chunk is done).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from voxmesh.clock import Clock, wall
from voxmesh.errors import Conflict, InvalidRequest, NotFound, UnsupportedFormat, VoxmeshError
from voxmesh.jobs.archive import ZipLimits
from voxmesh.jobs.idempotency import HEADER as IDEMPOTENCY_HEADER
from voxmesh.jobs.idempotency import check_key, fingerprint
from voxmesh.jobs.ingest import Chapter, parse_upload, plan_chunks
from voxmesh.jobs.lifecycle import JobEvent, JobState
from voxmesh.jobs.queue import ChunkQueue
from voxmesh.jobs.stitch import CONTENT_TYPES, cache_key, supported_formats
from voxmesh.settings import Settings
from voxmesh.storage.db import IdempotencyKeyTaken, JobDB, NewChunk, NewJob
from voxmesh.storage.objects import ObjectStore
from voxmesh.storage.schema import REQUEST_ID_KEY, JobRow

__all__ = ["JobService", "JobStatus", "VoiceCatalog"]

_MAX_OPTIONS_BYTES = 4096


class VoiceCatalog(Protocol):
    def check(self, model: str, voice: str) -> None:
        """Raise ``UnknownModel`` / ``UnknownVoice`` (404) if the pair cannot be served."""
        ...


@dataclass(frozen=True)
class JobStatus:
    id: str
    state: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    model: str
    voice: str
    response_format: str
    source_name: str | None
    chunks_total: int
    chunks_done: int
    chunks_dead: int
    audio_seconds: float
    eta_s: float | None
    duration_s: float | None
    chapters: int
    error: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"object": "job", **asdict(self)}


class JobService:
    def __init__(
        self,
        settings: Settings,
        db: JobDB,
        store: ObjectStore,
        queue: ChunkQueue,
        clock: Clock = wall,
        catalog: VoiceCatalog | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.store = store
        self.queue = queue
        self.clock = clock
        self.catalog = catalog

    # -- create ---------------------------------------------------------------------------

    def _validate(
        self, voice: str, model: str, response_format: str, options: Any, webhook_url: str | None
    ) -> dict[str, Any]:
        for name, value in (("voice", voice), ("model", model)):
            if not isinstance(value, str) or not value.strip() or len(value) > 200:
                raise InvalidRequest(f"'{name}' must be a non-empty string of at most 200 characters", param=name)
        if response_format not in supported_formats():
            raise UnsupportedFormat(
                f"response_format {response_format!r} is not supported for jobs; use one of {', '.join(supported_formats())}",
                param="response_format",
            )
        if options is None:
            options = {}
        if not isinstance(options, dict) or len(json.dumps(options)) > _MAX_OPTIONS_BYTES:
            raise InvalidRequest(f"'options' must be a JSON object under {_MAX_OPTIONS_BYTES} bytes", param="options")
        for reserved in ("input", "model", "voice", "response_format", "stream", REQUEST_ID_KEY):
            if reserved in options:
                raise InvalidRequest(f"'options' must not set {reserved!r}; pass it as a top-level field", param="options")
        if webhook_url is not None:
            parts = urlsplit(webhook_url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise InvalidRequest("'webhook_url' must be an absolute http(s) URL", param="webhook_url")
        if self.catalog is not None:
            self.catalog.check(model, voice)
        return {"sample_rate": self.settings.jobs.sample_rate, **options}

    async def create(self, **fields: Any) -> JobStatus:
        """:meth:`submit` without telling a replay apart (the CLI and tests)."""
        return (await self.submit(**fields))[0]

    async def submit(
        self,
        *,
        voice: str,
        model: str,
        text: str | None = None,
        filename: str | None = None,
        data: bytes | None = None,
        response_format: str = "wav",
        options: dict[str, Any] | None = None,
        webhook_url: str | None = None,
        tenant: str = "default",
        request_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> tuple[JobStatus, bool]:
        """Create a job from ``text`` or an uploaded file (``filename`` + ``data``), owned by ``tenant``.

        Every read below takes ``tenant`` too: None (the CLI, the runners) sees every job; a
        tenant sees only its own, another's answers 404 like a missing one.

        Returns the job and whether it is a replay: with ``idempotency_key`` a repeated
        submission returns the job the key first created (:mod:`voxmesh.jobs.idempotency`)."""
        key = check_key(idempotency_key)
        request_hash = None
        if key is not None:
            request_hash = fingerprint(
                {"voice": voice, "model": model, "text": text, "filename": filename,
                 "response_format": response_format, "options": options, "webhook_url": webhook_url}, data)
            earlier = await self._replay(tenant, key, request_hash)
            if earlier is not None:
                return earlier, True
        cfg = self.settings.jobs
        opts = self._validate(voice, model, response_format, options, webhook_url)
        if (text is None) == (data is None):
            raise InvalidRequest("send either 'text' or a file upload, not both or neither", param="input")
        if data is not None:
            hard = self.settings.hardening
            zip_limits = ZipLimits(hard.zip_max_uncompressed_bytes, hard.zip_max_files, hard.zip_max_ratio)
            chapters = parse_upload(filename or "upload.txt", data, max_bytes=cfg.max_upload_bytes,
                                    zip_limits=zip_limits)
        else:
            if not isinstance(text, str):
                raise InvalidRequest("'text' must be a string", param="text")
            if len(text.encode()) > cfg.max_upload_bytes:
                raise InvalidRequest(f"'text' is over {cfg.max_upload_bytes} bytes; upload a file", param="text")
            chapters = [Chapter("", text)]
        plan = plan_chunks(chapters, max_chars=cfg.chunk_chars, max_chunks=cfg.max_chunks)
        job_id = uuid.uuid4().hex
        # finished chunks are reused by content, within a tenant only: another tenant's job
        # must not learn (by its speed) that someone synthesized the same text
        keyed = opts if tenant == "default" else {**opts, "__tenant__": tenant}
        new_chunks = [
            NewChunk(i, chapter, piece, cache_key(piece, voice=voice, model=model, options=keyed))
            for i, (chapter, piece) in enumerate(plan.chunks)
        ]
        stored = opts if request_id is None else {**opts, REQUEST_ID_KEY: request_id}
        job = NewJob(job_id, model, voice, response_format, stored, filename, plan.chapters, webhook_url, tenant,
                     idempotency_key=key, request_hash=request_hash)
        try:
            await self.db.create_job(job, new_chunks, self.clock())
        except IdempotencyKeyTaken:  # a concurrent submission with the same key won the insert
            assert key is not None and request_hash is not None
            earlier = await self._replay(tenant, key, request_hash)
            if earlier is None:
                raise Conflict(f"'{IDEMPOTENCY_HEADER}' {key!r} is in use; retry", param=IDEMPOTENCY_HEADER) from None
            return earlier, True
        try:
            await self.queue.publish([c.id for c in await self.db.job_chunks(job_id)])
        except VoxmeshError as exc:
            # the key is given up with the job, so that the client's retry creates the job
            await self.db.try_transition_job(job_id, JobEvent.FAIL, self.clock(), error=f"queue refused the job: {exc}",
                                             idempotency_key=None)
            raise
        return await self.get(job_id), False

    async def _replay(self, tenant: str, key: str, request_hash: str) -> JobStatus | None:
        """The job ``key`` already names (replayed), None if none; 409 if it was another request."""
        earlier = await self.db.job_by_idempotency_key(tenant, key)
        if earlier is None:
            return None
        if earlier.request_hash != request_hash:
            raise Conflict(f"'{IDEMPOTENCY_HEADER}' {key!r} was used for a different request (job {earlier.id}); "
                           "send a new key for a new job", param=IDEMPOTENCY_HEADER)
        return await self._status(earlier)

    # -- read -----------------------------------------------------------------------------

    async def _status(self, job: JobRow) -> JobStatus:
        p = await self.db.progress(job.id)
        eta = None
        if job.state is JobState.RUNNING and job.started_at is not None and p.chars_done > 0:
            elapsed = max(1e-6, self.clock() - job.started_at)
            eta = (p.chars_total - p.chars_done) / (p.chars_done / elapsed)
        elif job.state is JobState.SUCCEEDED:
            eta = 0.0
        return JobStatus(
            id=job.id, state=job.state.value, created_at=job.created_at, started_at=job.started_at,
            finished_at=job.finished_at, model=job.model, voice=job.voice, response_format=job.response_format,
            source_name=job.source_name, chunks_total=p.total, chunks_done=p.done, chunks_dead=p.dead,
            audio_seconds=round(p.audio_seconds, 3), eta_s=None if eta is None else round(eta, 1),
            duration_s=job.duration_s, chapters=len(job.chapters), error=job.error,
        )

    async def get(self, job_id: str, tenant: str | None = None) -> JobStatus:
        return await self._status(await self.db.get_job(job_id, tenant))

    async def list(
        self, *, limit: int = 20, cursor: str | None = None, tenant: str | None = None
    ) -> tuple[list[JobStatus], str | None]:
        if not 1 <= limit <= 100:
            raise InvalidRequest("'limit' must be between 1 and 100", param="limit")
        seq = None
        if cursor:
            try:
                seq = int(cursor)
            except ValueError:
                raise InvalidRequest("'cursor' is not one this API returned", param="cursor") from None
        rows, next_seq = await self.db.list_jobs(limit, seq, tenant)
        return [await self._status(r) for r in rows], (str(next_seq) if next_seq is not None else None)

    async def cancel(self, job_id: str, tenant: str | None = None) -> JobStatus:
        await self.db.get_job(job_id, tenant)  # another tenant's job: 404 before anything changes
        await self.db.transition_job(job_id, JobEvent.CANCEL, self.clock())
        return await self.get(job_id, tenant)

    async def _finished(self, job_id: str, tenant: str | None) -> JobRow:
        job = await self.db.get_job(job_id, tenant)
        if job.state is not JobState.SUCCEEDED or job.result_key is None:
            raise Conflict(f"job {job_id} is {job.state.value}: the result exists once it has succeeded")
        return job

    async def result_url(self, job_id: str, tenant: str | None = None) -> str:
        job = await self._finished(job_id, tenant)
        assert job.result_key is not None
        return await self.store.presign_get(job.result_key, self.settings.storage.presign_ttl_s)

    async def result(self, job_id: str, tenant: str | None = None) -> tuple[bytes, str]:
        """The result's bytes and content type (for ``?stream=1`` and the CLI)."""
        job = await self._finished(job_id, tenant)
        assert job.result_key is not None
        return await self.store.get(job.result_key), CONTENT_TYPES.get(job.response_format, "application/octet-stream")

    async def chapters(self, job_id: str, tenant: str | None = None) -> dict[str, Any]:
        job = await self._finished(job_id, tenant)
        if job.chapters_key is None:
            raise NotFound(f"job {job_id} has no chapter marks")
        data: dict[str, Any] = json.loads(await self.store.get(job.chapters_key))
        return {"id": job_id, **data}

    async def queue_length(self) -> int:
        """Chunks waiting for a runner (for metrics and autoscaling on queue length)."""
        return await self.queue.length()
