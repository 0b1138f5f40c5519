"""Idempotent submission races on real databases (file SQLite in WAL, PostgreSQL): several
submissions with one ``Idempotency-Key`` at once make exactly one job; the others are
replays of it. (The unit tests' in-memory SQLite shares one connection, so it cannot race.)"""

from __future__ import annotations

import asyncio

from voxmesh.clock import FakeClock
from voxmesh.jobs.queue import DbQueue
from voxmesh.jobs.service import JobService
from voxmesh.settings import Settings
from voxmesh.storage.db import JobDB
from voxmesh.storage.memory import MemoryObjectStore


async def test_concurrent_submissions_with_one_key_make_one_job(sql_url: str) -> None:
    db = await JobDB.open(sql_url)
    clock = FakeClock(1_000_000.0)
    queue = DbQueue(db, clock=clock)
    service = JobService(Settings(jobs={"chunk_chars": 40}), db, MemoryObjectStore(), queue, clock=clock)
    try:
        text = "Raced words, long enough to make a few chunks of forty characters each."
        results = await asyncio.gather(*(
            service.submit(text=text, voice="v", model="m", tenant="acme", idempotency_key="race") for _ in range(6)))
        assert len({status.id for status, _ in results}) == 1
        assert sorted(replayed for _, replayed in results) == [False, True, True, True, True, True]
        jobs, _ = await service.list()
        assert len(jobs) == 1
        assert len(await db.job_chunks(jobs[0].id)) == jobs[0].chunks_total > 1
        assert await queue.length() == jobs[0].chunks_total  # published once
    finally:
        await queue.close()
        await db.close()
