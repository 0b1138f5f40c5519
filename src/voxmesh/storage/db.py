"""The metadata DB: jobs and chunks, through SQLAlchemy 2 async (SQLite or PostgreSQL).

Every state change is one conditional UPDATE (``WHERE state IN <sources of the event>`` from
``voxmesh.jobs.lifecycle``, plus ``lease_owner = me`` for a runner's own chunk), so two
processes racing on a row cannot both win and a stale runner cannot overwrite a newer owner.

Leasing (the DB is the queue by default):
- PostgreSQL: ``SELECT ... FOR UPDATE OF chunks SKIP LOCKED LIMIT 1`` then UPDATE, in one
  transaction: runners never wait on each other's rows.
- SQLite: one ``UPDATE ... WHERE id = (SELECT ... LIMIT 1) AND <still leasable> RETURNING``;
  the statement holds the database write lock, so it is atomic across processes.
A chunk is leasable when pending and due (``next_attempt_at <= now``) or leased with an expired
lease (the EXPIRE and LEASE edges taken at once), and its job is queued or running. Each lease
increments ``attempts``, so a chunk that keeps killing its runner is dead-lettered in the end.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from voxmesh.errors import NotFound
from voxmesh.jobs.lifecycle import (
    ACTIVE_JOB_STATES,
    ChunkEvent,
    ChunkState,
    JobEvent,
    JobState,
    chunk_sources,
    job_next,
    job_sources,
)
from voxmesh.storage.engine import create_engine
from voxmesh.storage.migrate import migrate
from voxmesh.storage.schema import ChunkRow, JobRow, chunks, jobs

__all__ = ["IdempotencyKeyTaken", "JobDB", "LeaseOutcome", "NewChunk", "NewJob", "Progress"]

_ACTIVE = [s.value for s in ACTIVE_JOB_STATES]


@dataclass(frozen=True)
class NewJob:
    id: str
    model: str
    voice: str
    response_format: str
    options: dict[str, Any]
    source_name: str | None
    chapters: list[dict[str, Any]]
    webhook_url: str | None
    tenant: str = "default"
    idempotency_key: str | None = None  # voxmesh.jobs.idempotency
    request_hash: str | None = None


class IdempotencyKeyTaken(Exception):
    """Another job of the tenant holds this Idempotency-Key (a concurrent submission won)."""


@dataclass(frozen=True)
class NewChunk:
    idx: int
    chapter: int
    text: str
    cache_key: str


@dataclass(frozen=True)
class Progress:
    total: int
    done: int
    dead: int
    chars_total: int
    chars_done: int
    audio_seconds: float


@dataclass(frozen=True)
class LeaseOutcome:
    """Result of trying to lease one named chunk: ``chunk`` if leased; else ``retry_at`` (a
    time to try again: not due yet, or leased by a live runner) or neither (gone for good)."""

    chunk: ChunkRow | None = None
    retry_at: float | None = None


def _target(event: JobEvent) -> JobState:
    """The one state ``event`` leads to (every job event has a single target in the table)."""
    (target,) = {job_next(src, event) for src in job_sources(event)}
    return target


def _sources(event: ChunkEvent) -> list[str]:
    return [s.value for s in chunk_sources(event)]


class JobDB:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name

    @classmethod
    async def open(cls, url: str) -> JobDB:
        """Connect and migrate to head (idempotent; safe from many processes at once)."""
        engine = create_engine(url)
        await migrate(engine)
        return cls(engine)

    async def close(self) -> None:
        await self.engine.dispose()

    # -- jobs ---------------------------------------------------------------------------------

    async def create_job(self, job: NewJob, new_chunks: Sequence[NewChunk], now: float) -> JobRow:
        """Insert the job and its chunks in one transaction; ``IdempotencyKeyTaken`` (nothing
        inserted) when the job's key is already another job's in its tenant."""
        try:
            return await self._insert_job(job, new_chunks, now)
        except IntegrityError:
            if job.idempotency_key is None:
                raise
            raise IdempotencyKeyTaken(job.idempotency_key) from None

    async def job_by_idempotency_key(self, tenant: str, key: str) -> JobRow | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(
                select(jobs).where(jobs.c.tenant == tenant, jobs.c.idempotency_key == key))).first()
        return None if row is None else JobRow.from_row(row)

    async def _insert_job(self, job: NewJob, new_chunks: Sequence[NewChunk], now: float) -> JobRow:
        async with self.engine.begin() as conn:
            await conn.execute(
                jobs.insert().values(
                    id=job.id,
                    state=JobState.QUEUED.value,
                    created_at=now,
                    model=job.model,
                    voice=job.voice,
                    response_format=job.response_format,
                    options=json.dumps(job.options, sort_keys=True),
                    source_name=job.source_name,
                    chunks_total=len(new_chunks),
                    chars_total=sum(len(c.text) for c in new_chunks),
                    chapters=json.dumps(job.chapters),
                    webhook_url=job.webhook_url,
                    webhook_sent=False,
                    tenant=job.tenant,
                    idempotency_key=job.idempotency_key,
                    request_hash=job.request_hash,
                )
            )
            await conn.execute(
                chunks.insert(),
                [
                    {
                        "job_id": job.id,
                        "idx": c.idx,
                        "chapter": c.chapter,
                        "text": c.text,
                        "chars": len(c.text),
                        "cache_key": c.cache_key,
                        "state": ChunkState.PENDING.value,
                        "attempts": 0,
                        "synth_calls": 0,
                        "next_attempt_at": 0.0,
                    }
                    for c in new_chunks
                ],
            )
            return await self._job(conn, job.id)

    async def _job(self, conn: AsyncConnection, job_id: str) -> JobRow:
        row = (await conn.execute(select(jobs).where(jobs.c.id == job_id))).first()
        if row is None:
            raise NotFound(f"no job {job_id!r}: see GET /v1/jobs", param="id")
        return JobRow.from_row(row)

    async def get_job(self, job_id: str, tenant: str | None = None) -> JobRow:
        """The job; with ``tenant``, another tenant's job is NotFound exactly like a missing one."""
        async with self.engine.connect() as conn:
            job = await self._job(conn, job_id)
        if tenant is not None and job.tenant != tenant:
            raise NotFound(f"no job {job_id!r}: see GET /v1/jobs", param="id")  # the same words
        return job

    async def list_jobs(
        self, limit: int, cursor: int | None = None, tenant: str | None = None
    ) -> tuple[list[JobRow], int | None]:
        """Newest first; ``cursor`` is the ``seq`` to continue below (opaque to clients);
        ``tenant`` lists only that tenant's jobs."""
        q = select(jobs).order_by(jobs.c.seq.desc()).limit(limit + 1)
        if tenant is not None:
            q = q.where(jobs.c.tenant == tenant)
        if cursor is not None:
            q = q.where(jobs.c.seq < cursor)
        async with self.engine.connect() as conn:
            rows = [JobRow.from_row(r) for r in (await conn.execute(q)).all()]
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, (rows[-1].seq if more and rows else None)

    async def progress(self, job_id: str) -> Progress:
        done = chunks.c.state == ChunkState.DONE.value
        q = select(
            func.count(),
            func.coalesce(func.sum(case((done, 1), else_=0)), 0),
            func.coalesce(func.sum(case((chunks.c.state == ChunkState.DEAD.value, 1), else_=0)), 0),
            func.coalesce(func.sum(chunks.c.chars), 0),
            func.coalesce(func.sum(case((done, chunks.c.chars), else_=0)), 0),
            func.coalesce(func.sum(case((done, chunks.c.samples * 1.0 / chunks.c.sample_rate), else_=0.0)), 0.0),
        ).where(chunks.c.job_id == job_id)
        async with self.engine.connect() as conn:
            r = (await conn.execute(q)).one()
        return Progress(int(r[0]), int(r[1]), int(r[2]), int(r[3]), int(r[4]), float(r[5]))

    async def transition_job(self, job_id: str, event: JobEvent, now: float, **values: Any) -> JobRow:
        """Apply ``event`` to the job; ``Conflict`` if its current state has no such edge."""
        async with self.engine.begin() as conn:
            current = await self._job(conn, job_id)
            target = job_next(current.state, event)
            if event is not JobEvent.START:
                values.setdefault("finished_at", now)
            res = await conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.state == current.state.value)
                .values(state=target.value, **values)
            )
            if res.rowcount != 1:  # lost a race: report against the state that won
                job_next((await self._job(conn, job_id)).state, event)
            return await self._job(conn, job_id)

    async def try_transition_job(self, job_id: str, event: JobEvent, now: float, **values: Any) -> bool:
        """Like :meth:`transition_job` but returns False instead of raising when not allowed."""
        sources = [s.value for s in job_sources(event)]
        if event is not JobEvent.START:
            values.setdefault("finished_at", now)
        async with self.engine.begin() as conn:
            res = await conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.state.in_(sources))
                .values(state=_target(event).value, **values)
            )
            return bool(res.rowcount == 1)

    async def jobs_to_finalize(self) -> list[str]:
        """Running jobs all of whose chunks are done (the stitcher may have died)."""
        not_done = (
            select(chunks.c.id)
            .where(chunks.c.job_id == jobs.c.id, chunks.c.state != ChunkState.DONE.value)
            .exists()
        )
        q = select(jobs.c.id).where(jobs.c.state == JobState.RUNNING.value, ~not_done).order_by(jobs.c.seq)
        async with self.engine.connect() as conn:
            return [r[0] for r in (await conn.execute(q)).all()]

    async def pending_webhooks(self) -> list[JobRow]:
        terminal = [JobState.SUCCEEDED.value, JobState.FAILED.value]
        q = select(jobs).where(jobs.c.webhook_url.is_not(None), ~jobs.c.webhook_sent, jobs.c.state.in_(terminal))
        async with self.engine.connect() as conn:
            return [JobRow.from_row(r) for r in (await conn.execute(q)).all()]

    async def claim_webhook(self, job_id: str) -> bool:
        """Take the job's webhook delivery (one process at a time); False if someone has it."""
        async with self.engine.begin() as conn:
            res = await conn.execute(
                update(jobs).where(jobs.c.id == job_id, ~jobs.c.webhook_sent).values(webhook_sent=True)
            )
            return bool(res.rowcount == 1)

    async def release_webhook(self, job_id: str) -> None:
        """Give a failed delivery back so it is retried."""
        async with self.engine.begin() as conn:
            await conn.execute(update(jobs).where(jobs.c.id == job_id).values(webhook_sent=False))

    async def mark_webhook_sent(self, job_id: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(jobs).where(jobs.c.id == job_id).values(webhook_sent=True))

    # -- chunks -------------------------------------------------------------------------------

    def _leasable(self, now: float) -> Any:
        return and_(
            or_(
                and_(chunks.c.state == ChunkState.PENDING.value, chunks.c.next_attempt_at <= now),
                and_(chunks.c.state == ChunkState.LEASED.value, chunks.c.lease_expires_at < now),
            ),
            chunks.c.job_id.in_(select(jobs.c.id).where(jobs.c.state.in_(_ACTIVE))),
        )

    async def _mark_started(self, conn: AsyncConnection, job_id: str, now: float) -> None:
        await conn.execute(
            update(jobs)
            .where(jobs.c.id == job_id, jobs.c.state.in_([s.value for s in job_sources(JobEvent.START)]))
            .values(state=_target(JobEvent.START).value, started_at=now)
        )

    def _lease_values(self, owner: str, now: float, lease_s: float) -> dict[str, Any]:
        return {
            "state": ChunkState.LEASED.value,
            "lease_owner": owner,
            "lease_expires_at": now + lease_s,
            "attempts": chunks.c.attempts + 1,
        }

    async def lease_next(self, owner: str, now: float, lease_s: float) -> ChunkRow | None:
        """Lease the oldest leasable chunk (oldest job first, then chunk order), or None."""
        pick = select(chunks.c.id).where(self._leasable(now)).order_by(chunks.c.id).limit(1)
        async with self.engine.begin() as conn:
            if self.dialect == "postgresql":
                chunk_id = (await conn.execute(pick.with_for_update(of=chunks, skip_locked=True))).scalar()
                if chunk_id is None:
                    return None
                target = chunks.c.id == chunk_id
            else:
                target = chunks.c.id == pick.scalar_subquery()
            row = (
                await conn.execute(
                    update(chunks)
                    .where(target, self._leasable(now))
                    .values(**self._lease_values(owner, now, lease_s))
                    .returning(*chunks.c)
                )
            ).first()
            if row is None:
                return None
            chunk = ChunkRow.from_row(row)
            await self._mark_started(conn, chunk.job_id, now)
            return chunk

    async def lease_chunk(self, chunk_id: int, owner: str, now: float, lease_s: float) -> LeaseOutcome:
        """Lease one named chunk (message-queue dispatch): see :class:`LeaseOutcome`."""
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    update(chunks)
                    .where(chunks.c.id == chunk_id, self._leasable(now))
                    .values(**self._lease_values(owner, now, lease_s))
                    .returning(*chunks.c)
                )
            ).first()
            if row is not None:
                chunk = ChunkRow.from_row(row)
                await self._mark_started(conn, chunk.job_id, now)
                return LeaseOutcome(chunk=chunk)
            q = select(chunks.c.state, chunks.c.next_attempt_at, chunks.c.lease_expires_at, jobs.c.state).join(
                jobs, jobs.c.id == chunks.c.job_id
            )
            cur = (await conn.execute(q.where(chunks.c.id == chunk_id))).first()
        if cur is None or cur[3] not in _ACTIVE:
            return LeaseOutcome()
        if cur[0] == ChunkState.PENDING.value:
            return LeaseOutcome(retry_at=float(cur[1]))
        if cur[0] == ChunkState.LEASED.value:
            return LeaseOutcome(retry_at=float(cur[2] or now))
        return LeaseOutcome()

    async def _owned(self, chunk_id: int, owner: str, event: ChunkEvent, **values: Any) -> bool:
        async with self.engine.begin() as conn:
            res = await conn.execute(
                update(chunks)
                .where(chunks.c.id == chunk_id, chunks.c.lease_owner == owner, chunks.c.state.in_(_sources(event)))
                .values(**values)
            )
            return bool(res.rowcount == 1)

    async def renew(self, chunk_id: int, owner: str, now: float, lease_s: float) -> bool:
        """Extend my lease (heartbeat); False if it was lost (expired and taken)."""
        return await self._owned(chunk_id, owner, ChunkEvent.COMPLETE, lease_expires_at=now + lease_s)

    async def count_synth_call(self, chunk_id: int, owner: str) -> bool:
        """Record, durably and before the call, that this chunk is sent to the engine."""
        return await self._owned(chunk_id, owner, ChunkEvent.COMPLETE, synth_calls=chunks.c.synth_calls + 1)

    async def complete(self, chunk_id: int, owner: str, audio_key: str, samples: int, sample_rate: int) -> bool:
        return await self._owned(
            chunk_id, owner, ChunkEvent.COMPLETE,
            state=ChunkState.DONE.value, audio_key=audio_key, samples=samples, sample_rate=sample_rate,
            lease_owner=None, lease_expires_at=None, error=None,
        )

    async def retry(self, chunk_id: int, owner: str, next_attempt_at: float, error: str) -> bool:
        return await self._owned(
            chunk_id, owner, ChunkEvent.RETRY,
            state=ChunkState.PENDING.value, next_attempt_at=next_attempt_at, error=error,
            lease_owner=None, lease_expires_at=None,
        )

    async def kill(self, chunk_id: int, owner: str, reason: str) -> bool:
        """Dead-letter the chunk with its reason (the job is failed by the caller)."""
        return await self._owned(
            chunk_id, owner, ChunkEvent.KILL,
            state=ChunkState.DEAD.value, error=reason, lease_owner=None, lease_expires_at=None,
        )

    async def job_chunks(self, job_id: str) -> list[ChunkRow]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(chunks).where(chunks.c.job_id == job_id).order_by(chunks.c.idx))).all()
        return [ChunkRow.from_row(r) for r in rows]

    async def dispatchable(self, now: float) -> list[int]:
        """Ids of leasable chunks (for re-publishing to a message queue after a restart)."""
        async with self.engine.connect() as conn:
            return [r[0] for r in (await conn.execute(select(chunks.c.id).where(self._leasable(now)))).all()]

    async def queue_length(self, now: float) -> int:
        """Chunks waiting for a runner: leasable now, plus pending ones waiting out a backoff."""
        waiting = or_(
            chunks.c.state == ChunkState.PENDING.value,
            and_(chunks.c.state == ChunkState.LEASED.value, chunks.c.lease_expires_at < now),
        )
        q = select(func.count()).where(waiting, chunks.c.job_id.in_(select(jobs.c.id).where(jobs.c.state.in_(_ACTIVE))))
        async with self.engine.connect() as conn:
            return int((await conn.execute(q)).scalar() or 0)

    async def job_counts(self) -> dict[str, int]:
        """Jobs per state, every state present (0 included), for the ``voxmesh_jobs`` gauge."""
        q = select(jobs.c.state, func.count()).group_by(jobs.c.state)
        async with self.engine.connect() as conn:
            found = {str(r[0]): int(r[1]) for r in (await conn.execute(q)).all()}
        return {s.value: found.get(s.value, 0) for s in JobState}
