"""RabbitMQ dispatch against the machine's real broker, on a throwaway vhost."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aio_pika
import pytest

from voxmesh.jobs.queue_rabbitmq import RabbitQueue
from voxmesh.jobs.runner import Runner
from voxmesh.jobs.service import JobService
from voxmesh.jobs.synth import FakeSynthesizer
from voxmesh.settings import Settings
from voxmesh.storage.db import JobDB
from voxmesh.storage.memory import MemoryObjectStore

pytestmark = pytest.mark.rabbitmq
TEXT = " ".join(f"This is sentence {i}." for i in range(20))


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[JobDB]:
    d = await JobDB.open(f"sqlite+aiosqlite:///{tmp_path / 'j.db'}")
    yield d
    await d.close()


def _settings() -> Settings:
    return Settings(jobs={"chunk_chars": 50, "lease_s": 1.0, "retry_base_s": 0.2, "poll_interval_s": 0.05})


async def _runner(db: JobDB, q: RabbitQueue, store: MemoryObjectStore, synth: FakeSynthesizer, s: Settings) -> Runner:
    return Runner(db=db, store=store, queue=q, synth=synth, settings=s.jobs, rng=random.Random(0))


async def test_job_through_rabbitmq_with_bad_message_and_retry(db: JobDB, rabbitmq_url: str) -> None:
    s = _settings()
    name = f"tts-tasks-{uuid.uuid4().hex[:8]}"
    q = await RabbitQueue(db, rabbitmq_url, name=name, prefetch=2).connect()
    store = MemoryObjectStore()
    fails = {"n": 0}

    def fail(text: str) -> Exception | None:
        if text.startswith("This is sentence 0") and fails["n"] == 0:
            fails["n"] += 1
            return TimeoutError("engine slow")
        return None

    synth = FakeSynthesizer(fail=fail)
    service = JobService(s, db, store, q)
    try:
        # a poison message sits in front of the job's messages
        await q._channel.default_exchange.publish(aio_pika.Message(b"not json"), routing_key=name)
        job = await service.create(text=TEXT, voice="v", model="m")
        await asyncio.sleep(0.2)
        assert await service.queue_length() == job.chunks_total + 1
        runners = [await _runner(db, q, store, synth, s) for _ in range(2)]
        tasks = [asyncio.create_task(r.run()) for r in runners]
        for _ in range(200):
            if (await service.get(job.id)).state == "succeeded":
                break
            await asyncio.sleep(0.05)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        st = await service.get(job.id)
        assert st.state == "succeeded" and fails["n"] == 1
        chunks = await db.job_chunks(job.id)
        assert chunks[0].attempts == 2 and all(c.synth_calls == 1 for c in chunks[1:])
        assert await service.queue_length() == 0
    finally:
        await q.close()


async def test_unacked_message_is_redelivered_after_a_crash(db: JobDB, rabbitmq_url: str) -> None:
    s = _settings()
    store = MemoryObjectStore()
    synth = FakeSynthesizer()
    name = f"tts-tasks-{uuid.uuid4().hex[:8]}"
    q1 = await RabbitQueue(db, rabbitmq_url, name=name).connect()
    service = JobService(s, db, store, q1)
    job = await service.create(text="Only one chunk here.", voice="v", model="m")
    lease = await q1.lease("doomed", s.jobs.lease_s, wait_s=5.0)
    assert lease is not None
    await q1.close()  # the runner "dies": connection gone, message unacked, DB lease still held
    q2 = await RabbitQueue(db, rabbitmq_url, name=name).connect()
    try:
        runner = await _runner(db, q2, store, synth, s)
        deadline = asyncio.get_running_loop().time() + 10
        while (await service.get(job.id)).state != "succeeded":
            assert asyncio.get_running_loop().time() < deadline, "redelivered chunk was never finished"
            await runner.step(wait_s=0.2)
        chunk = (await db.job_chunks(job.id))[0]
        assert chunk.lease_owner is None and chunk.attempts == 2 and chunk.synth_calls == 1
    finally:
        await q2.close()


async def test_a_runner_that_lives_on_after_a_db_error_keeps_receiving(db: JobDB, rabbitmq_url: str) -> None:
    """Prefetch 1: a chunk's message that a runner neither acked nor gave back after a failed DB
    call (a PostgreSQL restart in the chaos soak) blocked that runner's consumer for good."""
    s = _settings()
    store = MemoryObjectStore()
    synth = FakeSynthesizer()
    name = f"tts-tasks-{uuid.uuid4().hex[:8]}"
    q = await RabbitQueue(db, rabbitmq_url, name=name, prefetch=1).connect()
    service = JobService(s, db, store, q)
    real_complete = db.complete
    failed: list[int] = []

    async def complete_fails_once(chunk_id: int, *args: object, **kwargs: object) -> bool:
        if not failed:
            failed.append(chunk_id)
            raise ConnectionResetError("the database system is shutting down")
        return await real_complete(chunk_id, *args, **kwargs)  # type: ignore[arg-type]

    db.complete = complete_fails_once  # type: ignore[method-assign]
    try:
        job = await service.create(text=TEXT, voice="v", model="m")
        runner = await _runner(db, q, store, synth, s)
        task = asyncio.create_task(runner.run())  # the loop logs the failed step and goes on
        deadline = asyncio.get_running_loop().time() + 15
        while (await service.get(job.id)).state != "succeeded":
            assert asyncio.get_running_loop().time() < deadline, "the runner stopped receiving after the DB error"
            await asyncio.sleep(0.1)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        chunks = await db.job_chunks(job.id)
        assert failed and all(c.synth_calls == 1 for c in chunks)
        assert await service.queue_length() == 0
    finally:
        await q.close()
