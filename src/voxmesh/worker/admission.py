"""asyncio face of :class:`~voxmesh.worker.scheduler.CoreScheduler`.

A request calls ``async with admission.slot() as slot`` and, before each segment,
``slot.threads()`` for the thread count to run that segment with. The waiter's future is
registered before the ticket is queued, so a release can never miss it.

``slot(cost=n)`` (optional) says how big the request is in any unit proportional to its
synthesis time (the worker passes the input's characters). Admission learns seconds per
unit from the requests it has run (EWMA of run time / size) and hands the scheduler the
estimated service time, so the waiting list is ordered by latest start time (see
:mod:`voxmesh.worker.scheduler`); without a cost it is FIFO.

``slot.threads(cost=n)`` likewise sizes the segment (its characters). Admission learns the
seconds per unit of segments run with all cores, so the scheduler knows how long an
all-core segment should take and can take a *fresh* one back for a newcomer
(``preempt_frac``): it then fires that segment's ``slot.interrupt``, the engine stops, and
the worker runs the segment again (the next ``slot.threads()`` grants one core).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from voxmesh.engines.base import Interrupt
from voxmesh.errors import Overloaded
from voxmesh.worker.scheduler import Admit, CoreScheduler, Grant

__all__ = ["Admission", "Slot"]


class Slot:
    def __init__(self, admission: Admission, ticket: int) -> None:
        self._admission = admission
        self.ticket = ticket
        #: fired when the scheduler takes the current segment's cores back (pass it to the engine)
        self.interrupt = Interrupt()
        self._segment: tuple[float, float, int] | None = None  # (start, cost, threads)

    def threads(self, cost: float = 0.0) -> int:
        """Thread count for the next segment (``cost``: its size, e.g. characters); a drop
        from all cores to one starts waiters."""
        admission = self._admission
        now = admission.now()
        self.finish_segment(now)
        expected = cost * admission.wide_seconds_per_unit
        threads = admission.scheduler.threads_for(self.ticket, now=now, cost=expected)
        self.interrupt = Interrupt()
        self._segment = (now, cost, threads)
        admission.wake(admission.scheduler.admit_waiting(now=now))
        return threads

    def finish_segment(self, now: float) -> None:
        """Learn from the segment that just ended (all-core, not interrupted)."""
        if self._segment is not None:
            start, cost, threads = self._segment
            self._segment = None
            if threads > 1 and not self.interrupt.fired:
                self._admission.wide_seconds_per_unit = self._admission.ewma(
                    self._admission.wide_seconds_per_unit, cost, now - start)


class Admission:
    def __init__(self, cores: int, max_queue: int, retry_after_s: float = 1.0, calm_s: float = 0.0,
                 clock: Callable[[], float] = time.monotonic, preempt_frac: float = 0.0,
                 max_useful_threads: int | None = None) -> None:
        self.scheduler = CoreScheduler(cores, max_queue, calm_s=calm_s, preempt_frac=preempt_frac,
                                       max_useful_threads=max_useful_threads)
        self.now = clock
        self._tickets = itertools.count(1)
        self._waiters: dict[int, asyncio.Future[None]] = {}
        self._slots: dict[int, Slot] = {}
        self.retry_after_s = retry_after_s
        self.rejected = 0
        self.seconds_per_unit = 0.0  # learned; 0 until the first sized request finishes
        self.wide_seconds_per_unit = 0.0  # learned from all-core segments; 0: never preempt
        self.ewma_alpha = 0.2

    @property
    def in_flight(self) -> int:
        return self.scheduler.in_flight

    @property
    def queued(self) -> int:
        return self.scheduler.queued

    def ewma(self, current: float, cost: float, seconds: float) -> float:
        """``current`` seconds per unit moved towards ``seconds / cost`` (the first sample sets it)."""
        if cost <= 0 or seconds <= 0:
            return current
        rate = seconds / cost
        return rate if current == 0.0 else current + self.ewma_alpha * (rate - current)

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
            for taken in self.scheduler.take_preempted():
                self._slots[taken].interrupt.fire()  # only a running slot's segment is ever taken
        try:
            await waiter
            t_start = self.now()
            slot = self._slots[ticket] = Slot(self, ticket)
            yield slot
            now = self.now()
            slot.finish_segment(now)
            self.seconds_per_unit = self.ewma(self.seconds_per_unit, cost, now - t_start)
        finally:
            self._waiters.pop(ticket, None)
            self._slots.pop(ticket, None)
            self.wake(self.scheduler.release(ticket, now=self.now()))

    def wake(self, grants: list[Grant]) -> None:
        for grant in grants:
            started = self._waiters.get(grant.ticket)
            if started is not None and not started.done():
                started.set_result(None)
