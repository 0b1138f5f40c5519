"""asyncio face of :class:`~voxmesh.worker.scheduler.CoreScheduler`.

A request calls ``async with admission.slot() as slot`` and, before each segment,
``slot.threads()`` for the thread count to run that segment with. The waiter's future is
registered before the ticket is queued, so a release can never miss it.

``slot(cost=n)`` (optional) says how big the request is in any unit proportional to its
synthesis time (the worker passes the input's characters). Admission learns seconds per
unit from the requests it has run (EWMA of run time / size) and hands the scheduler the
estimated service time, so the waiting list is ordered by latest start time (see
:mod:`voxmesh.worker.scheduler`); without a cost it is FIFO.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from voxmesh.errors import Overloaded
from voxmesh.worker.scheduler import Admit, CoreScheduler, Grant

__all__ = ["Admission", "Slot"]


class Slot:
    def __init__(self, admission: Admission, ticket: int) -> None:
        self._admission = admission
        self.ticket = ticket

    def threads(self) -> int:
        """Thread count for the next segment; a drop from all cores to one starts waiters."""
        admission = self._admission
        threads = admission.scheduler.threads_for(self.ticket, now=admission.now())
        admission.wake(admission.scheduler.admit_waiting(now=admission.now()))
        return threads


class Admission:
    def __init__(self, cores: int, max_queue: int, retry_after_s: float = 1.0, calm_s: float = 0.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.scheduler = CoreScheduler(cores, max_queue, calm_s=calm_s)
        self.now = clock
        self._tickets = itertools.count(1)
        self._waiters: dict[int, asyncio.Future[None]] = {}
        self.retry_after_s = retry_after_s
        self.rejected = 0
        self.seconds_per_unit = 0.0  # learned; 0 until the first sized request finishes
        self.ewma_alpha = 0.2

    @property
    def in_flight(self) -> int:
        return self.scheduler.in_flight

    @property
    def queued(self) -> int:
        return self.scheduler.queued

    def _learn(self, cost: float, seconds: float) -> None:
        if cost <= 0 or seconds <= 0:
            return
        rate = seconds / cost
        if self.seconds_per_unit == 0.0:
            self.seconds_per_unit = rate
        else:
            self.seconds_per_unit += self.ewma_alpha * (rate - self.seconds_per_unit)

    @asynccontextmanager
    async def slot(self, cost: float = 0.0) -> AsyncIterator[Slot]:
        ticket = next(self._tickets)
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters[ticket] = waiter
        admit, _grant = self.scheduler.submit(ticket, now=self.now(), cost=cost * self.seconds_per_unit)
        if admit is Admit.REJECTED:
            del self._waiters[ticket]
            self.rejected += 1
            raise Overloaded(
                f"worker queue is full ({self.scheduler.max_queue} waiting): retry later",
                retry_after=self.retry_after_s,
            )
        if admit is Admit.RUN:
            waiter.set_result(None)
        try:
            await waiter
            t_start = self.now()
            yield Slot(self, ticket)
            self._learn(cost, self.now() - t_start)
        finally:
            self._waiters.pop(ticket, None)
            self.wake(self.scheduler.release(ticket, now=self.now()))

    def wake(self, grants: list[Grant]) -> None:
        for grant in grants:
            started = self._waiters.get(grant.ticket)
            if started is not None and not started.done():
                started.set_result(None)
