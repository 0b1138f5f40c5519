"""An idle runner on the DB queue: it waits longer the longer no work comes, queries the
database once per wait, and a submission in the same process wakes it at once.

Counts and generous bounds, not timings: a slow machine only lowers the counts."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from voxmesh.jobs.queue import DbQueue, Doorbell, idle_wait
from voxmesh.jobs.synth import FakeSynthesizer
from voxmesh.storage.db import JobDB

from .conftest import Stack


def test_idle_wait_doubles_to_the_cap_and_work_resets_it() -> None:
    waits = [0.5]
    for _ in range(5):
        waits.append(idle_wait(waits[-1], False, 0.5, 2.0))
    assert waits == [0.5, 1.0, 2.0, 2.0, 2.0, 2.0]
    assert idle_wait(2.0, True, 0.5, 2.0) == 0.5
    assert idle_wait(0.1, False, 0.5, 0.3) == 0.5  # never below the base, even with a cap under it


class CountingDb:
    """A JobDB whose ``lease_next`` calls are counted."""

    def __init__(self, db: JobDB) -> None:
        self._db = db
        self.lease_calls = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self._db, name)

    async def lease_next(self, *args: object) -> object:
        self.lease_calls += 1
        return await self._db.lease_next(*args)  # type: ignore[arg-type]


@pytest.fixture
async def db_stack(stack: Stack) -> AsyncIterator[Stack]:
    if not isinstance(stack.queue, DbQueue):
        pytest.skip("the doorbell is the DB queue's")
    counting = CountingDb(stack.db)
    stack.queue.db = counting  # type: ignore[assignment]
    yield stack


async def test_a_lease_with_nothing_to_do_queries_once_per_wait(db_stack: Stack) -> None:
    queue = db_stack.queue
    assert isinstance(queue, DbQueue)
    assert await queue.lease("r1", 60, 0.3) is None
    assert queue.db.lease_calls == 1  # type: ignore[attr-defined]  # not every poll interval


async def test_a_submission_wakes_a_waiting_lease(db_stack: Stack) -> None:
    queue = db_stack.queue
    waiting = asyncio.ensure_future(queue.lease("r1", 60, 60.0))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    status = await db_stack.service.create(text="Wake the runner up.", voice="v", model="m")
    lease = await asyncio.wait_for(waiting, 10.0)  # not the 60 s wait
    assert lease is not None and lease.chunk.job_id == status.id


async def test_a_delayed_publish_rings_when_due() -> None:
    bell = Doorbell()
    rang = bell.current()
    bell.ring_in(0.05)
    assert not rang.is_set()
    assert await Doorbell.wait(rang, 10.0)
    assert not bell.current().is_set()  # the next waiter waits for the next ring


async def test_an_idle_runner_backs_off_and_a_submission_still_starts_at_once(db_stack: Stack) -> None:
    jobs = db_stack.settings.jobs.model_copy(update={"poll_interval_s": 0.02, "idle_poll_max_s": 0.3})
    runner = db_stack.runner()
    runner.settings = jobs
    runner.synth = FakeSynthesizer()
    task = asyncio.ensure_future(runner.run())
    try:
        await asyncio.sleep(1.5)
        polls = db_stack.queue.db.lease_calls  # type: ignore[attr-defined]
        # fixed 20 ms polling would be ~75; doubling to 0.3 s: 0.02+0.04+0.08+0.16+0.3+0.3+... ~ 8
        assert 1 <= polls <= 15, polls
        status = await db_stack.service.create(text="Start me now.", voice="v", model="m")
        for _ in range(200):  # the idle wait is 0.3 s; the doorbell makes it at once
            if (await db_stack.service.get(status.id)).state == "succeeded":
                break
            await asyncio.sleep(0.01)
        assert (await db_stack.service.get(status.id)).state == "succeeded"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
