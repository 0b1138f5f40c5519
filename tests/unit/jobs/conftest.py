from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from voxmesh.clock import FakeClock
from voxmesh.jobs.queue import ChunkQueue, DbQueue, MemoryQueue
from voxmesh.jobs.runner import Runner
from voxmesh.jobs.service import JobService
from voxmesh.jobs.synth import FakeSynthesizer
from voxmesh.settings import Settings
from voxmesh.storage.db import JobDB
from voxmesh.storage.memory import MemoryObjectStore


@dataclass
class Stack:
    settings: Settings
    db: JobDB
    store: MemoryObjectStore
    queue: ChunkQueue
    synth: FakeSynthesizer
    clock: FakeClock
    service: JobService

    def runner(self, name: str = "r1") -> Runner:
        import random

        return Runner(
            db=self.db, store=self.store, queue=self.queue, synth=self.synth,
            settings=self.settings.jobs, owner=name, clock=self.clock, rng=random.Random(1),
        )

    async def drain(self, runner: Runner | None = None, max_steps: int = 1000) -> int:
        runner = runner or self.runner()
        steps = 0
        while await runner.step(wait_s=0.0):
            steps += 1
            assert steps < max_steps
        return steps


@pytest.fixture(params=["db", "memory"])
async def stack(request: pytest.FixtureRequest) -> AsyncIterator[Stack]:
    settings = Settings(jobs={"chunk_chars": 40, "max_attempts": 3, "retry_base_s": 1.0, "retry_max_s": 8.0})
    db = await JobDB.open("sqlite+aiosqlite://")
    clock = FakeClock(1_000_000.0)
    queue: ChunkQueue = DbQueue(db, clock=clock) if request.param == "db" else MemoryQueue(db, clock=clock)
    store = MemoryObjectStore()
    service = JobService(settings, db, store, queue, clock=clock)
    try:
        yield Stack(settings, db, store, queue, FakeSynthesizer(), clock, service)
    finally:
        await queue.close()
        await db.close()
