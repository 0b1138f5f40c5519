"""The metadata DB against real SQLite (file, WAL) and real PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import inspect

from voxmesh.errors import Conflict, NotFound
from voxmesh.jobs.lifecycle import ChunkState, JobEvent, JobState
from voxmesh.storage.db import JobDB, NewChunk, NewJob
from voxmesh.storage.migrate import migrate
from voxmesh.storage.schema import metadata


@pytest.fixture
async def db(sql_url: str) -> AsyncIterator[JobDB]:
    d = await JobDB.open(sql_url)
    try:
        yield d
    finally:
        await d.close()


def _job(job_id: str, n: int) -> tuple[NewJob, list[NewChunk]]:
    job = NewJob(job_id, "m", "v", "wav", {"speed": 1.0}, "book.txt", [{"title": "One", "first_chunk": 0}], None)
    return job, [NewChunk(i, 0, f"sentence {i}.", f"{i:064x}") for i in range(n)]


async def test_migrate_is_idempotent_and_matches_schema(sql_url: str, db: JobDB) -> None:
    await migrate(sql_url)
    await asyncio.gather(migrate(sql_url), migrate(sql_url))

    def columns(conn: object) -> dict[str, set[str]]:
        insp = inspect(conn)
        return {t: {c["name"] for c in insp.get_columns(t)} for t in insp.get_table_names() if t != "alembic_version"}

    async with db.engine.connect() as conn:
        live = await conn.run_sync(columns)
    from voxmesh.voices.db import metadata as voices_metadata  # the voices table lives with its package

    tables = [*metadata.sorted_tables, *voices_metadata.sorted_tables]
    assert live == {t.name: {c.name for c in t.columns} for t in tables}


async def test_job_roundtrip_and_paging(db: JobDB) -> None:
    for i in range(5):
        await db.create_job(*_job(f"job{i}", 2), now=100.0 + i)
    row = await db.get_job("job3")
    assert row.state is JobState.QUEUED and row.chunks_total == 2 and row.options == {"speed": 1.0}
    page1, cur = await db.list_jobs(limit=2)
    assert [j.id for j in page1] == ["job4", "job3"] and cur is not None
    page2, cur = await db.list_jobs(limit=2, cursor=cur)
    page3, cur3 = await db.list_jobs(limit=2, cursor=cur)
    assert [j.id for j in page2] == ["job2", "job1"] and [j.id for j in page3] == ["job0"] and cur3 is None
    with pytest.raises(NotFound):
        await db.get_job("nope")


async def test_lease_complete_retry_kill(db: JobDB) -> None:
    await db.create_job(*_job("j", 3), now=0.0)
    a = await db.lease_next("r1", now=10.0, lease_s=5.0)
    b = await db.lease_next("r2", now=10.0, lease_s=5.0)
    assert a is not None and b is not None and (a.idx, b.idx) == (0, 1)
    assert a.state is ChunkState.LEASED and a.attempts == 1
    assert (await db.get_job("j")).state is JobState.RUNNING
    # a stale owner cannot complete someone else's chunk
    assert not await db.complete(a.id, "r2", "k", 10, 24000)
    assert await db.count_synth_call(a.id, "r1")
    assert await db.complete(a.id, "r1", "k0", 24000, 24000)
    assert not await db.complete(a.id, "r1", "k0", 24000, 24000)  # DONE is terminal
    assert await db.retry(b.id, "r2", next_attempt_at=20.0, error="boom")
    c = await db.lease_next("r1", now=11.0, lease_s=5.0)
    assert c is not None and c.idx == 2
    assert await db.lease_next("r1", now=11.0, lease_s=5.0) is None  # b waits out its backoff
    assert await db.queue_length(now=11.0) == 1
    b2 = await db.lease_next("r1", now=20.0, lease_s=5.0)
    assert b2 is not None and b2.id == b.id and b2.attempts == 2
    assert await db.kill(b2.id, "r1", "attempts exhausted: boom")
    chunks = await db.job_chunks("j")
    assert [c.state for c in chunks] == [ChunkState.DONE, ChunkState.DEAD, ChunkState.LEASED]
    assert chunks[1].error == "attempts exhausted: boom" and chunks[0].synth_calls == 1
    p = await db.progress("j")
    assert (p.total, p.done, p.dead) == (3, 1, 1) and p.audio_seconds == pytest.approx(1.0)


async def test_expired_lease_goes_to_another_runner(db: JobDB) -> None:
    await db.create_job(*_job("j", 1), now=0.0)
    a = await db.lease_next("dead-runner", now=0.0, lease_s=5.0)
    assert a is not None
    assert await db.lease_next("r2", now=4.0, lease_s=5.0) is None
    assert await db.renew(a.id, "dead-runner", now=4.0, lease_s=5.0)  # heartbeat: now expires at 9
    assert await db.lease_next("r2", now=8.0, lease_s=5.0) is None
    b = await db.lease_next("r2", now=9.5, lease_s=5.0)
    assert b is not None and b.id == a.id and b.lease_owner == "r2" and b.attempts == 2
    assert not await db.renew(a.id, "dead-runner", now=9.6, lease_s=5.0)
    assert not await db.complete(a.id, "dead-runner", "k", 1, 1)


async def test_lease_chunk_outcomes(db: JobDB) -> None:
    await db.create_job(*_job("j", 2), now=0.0)
    chunks = await db.job_chunks("j")
    got = await db.lease_chunk(chunks[0].id, "r1", now=1.0, lease_s=5.0)
    assert got.chunk is not None
    busy = await db.lease_chunk(chunks[0].id, "r2", now=2.0, lease_s=5.0)
    assert busy.chunk is None and busy.retry_at == 6.0
    await db.complete(chunks[0].id, "r1", "k", 1, 1)
    gone = await db.lease_chunk(chunks[0].id, "r2", now=2.0, lease_s=5.0)
    assert gone.chunk is None and gone.retry_at is None
    await db.transition_job("j", JobEvent.CANCEL, now=3.0)
    assert (await db.lease_chunk(chunks[1].id, "r2", now=3.0, lease_s=5.0)) == gone
    assert await db.lease_next("r2", now=3.0, lease_s=5.0) is None  # cancelled work is never picked
    assert await db.queue_length(now=3.0) == 0
    with pytest.raises(Conflict):
        await db.transition_job("j", JobEvent.CANCEL, now=4.0)


async def test_concurrent_leases_never_share_a_chunk(db: JobDB) -> None:
    await db.create_job(*_job("j", 30), now=0.0)

    async def runner(name: str) -> list[int]:
        got = []
        while (c := await db.lease_next(name, now=1.0, lease_s=60.0)) is not None:
            got.append(c.idx)
        return got

    results = await asyncio.gather(*(runner(f"r{i}") for i in range(4)))
    flat = sorted(i for r in results for i in r)
    assert flat == list(range(30))


async def test_finalize_candidates_and_webhooks(db: JobDB) -> None:
    job, chunks = _job("j", 2)
    await db.create_job(NewJob(**{**job.__dict__, "webhook_url": "http://127.0.0.1:1/hook"}), chunks, now=0.0)
    for _ in range(2):
        c = await db.lease_next("r", now=1.0, lease_s=5.0)
        assert c is not None
        assert await db.jobs_to_finalize() == []
        await db.complete(c.id, "r", "k", 1, 1)
    assert await db.jobs_to_finalize() == ["j"]
    assert await db.try_transition_job("j", JobEvent.SUCCEED, now=2.0, result_key="r/k")
    assert not await db.try_transition_job("j", JobEvent.SUCCEED, now=2.0)
    assert await db.jobs_to_finalize() == []
    assert [j.id for j in await db.pending_webhooks()] == ["j"]
    await db.mark_webhook_sent("j")
    assert await db.pending_webhooks() == []
