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

Measured speed-up (``profile``, a :class:`~voxmesh.worker.speedup.SpeedProfile`): after a
segment's inference the worker calls ``slot.observe(threads, cost, seconds)``. Admission
counts *load changes* (the number of running requests or the threads granted to them
changed: a start, an end, a different grant, a preemption); a segment whose run saw none, and
that was not interrupted, ran on a steady worker and feeds the profile. Before every grant
admission hands the profile's :meth:`~voxmesh.worker.speedup.SpeedProfile.useful_max` to the
scheduler (:meth:`~voxmesh.worker.scheduler.CoreScheduler.set_max_useful`), so no request is
granted a thread class that does not make it faster.
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
from voxmesh.worker.speedup import SpeedProfile

__all__ = ["Admission", "Slot"]


class Slot:
    def __init__(self, admission: Admission, ticket: int) -> None:
        self._admission = admission
        self.ticket = ticket
        #: fired when the scheduler takes the current segment's cores back (pass it to the engine)
        self.interrupt = Interrupt()
        self._segment: tuple[float, float, int] | None = None  # (start, cost, threads)
        self._load_mark = -1  # admission.load_changes when the current segment was granted

    def threads(self, cost: float = 0.0) -> int:
        """Thread count for the next segment (``cost``: its size, e.g. characters); a drop
        from all cores to one starts waiters."""
        admission = self._admission
        now = admission.now()
        self.finish_segment(now)
        expected = cost * admission.wide_seconds_per_unit
        admission.refresh_cap()
        threads = admission.scheduler.threads_for(self.ticket, now=now, cost=expected)
        self.interrupt = Interrupt()
        self._segment = (now, cost, threads)
        admission.wake(admission.scheduler.admit_waiting(now=now))
        admission.note_load()
        self._load_mark = admission.load_changes
        return threads

    def observe(self, threads: int, cost: float, seconds: float) -> bool:
        """The current segment's inference took ``seconds`` on ``threads`` threads (the grant,
        or fewer when the host budget gave fewer); fed to the speed profile when the worker was
        steady all along and the segment was not interrupted. True when it was."""
        admission = self._admission
        admission.note_load()
        if admission.profile is None or self.interrupt.fired or admission.load_changes != self._load_mark:
            return False
        admission.profile.observe(threads, cost, seconds)
        admission.refresh_cap()
        return True

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
                 max_useful_threads: int | None = None, profile: SpeedProfile | None = None) -> None:
        self.scheduler = CoreScheduler(cores, max_queue, calm_s=calm_s, preempt_frac=preempt_frac,
                                       max_useful_threads=max_useful_threads)
        #: measured seconds per unit per thread class; its useful_max caps the grants
        self.profile = profile
        #: how often the running requests or their grants changed (see the module doc)
        self.load_changes = 0
        self._load: tuple[int, int] = (0, 0)
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

    def refresh_cap(self) -> None:
        """Hand the profile's measured cap to the scheduler (it may change with time: staleness)."""
        if self.profile is not None:
            self.scheduler.set_max_useful(self.profile.useful_max())

    def note_load(self) -> None:
        """Count a load change if the running requests or their granted threads changed."""
        load = (self.scheduler.in_flight, self.scheduler.threads_granted)
        if load != self._load:
            self._load = load
            self.load_changes += 1

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
        self.refresh_cap()
        admit, _grant = self.scheduler.submit(ticket, now=self.now(), cost=cost * self.seconds_per_unit)
        self.note_load()
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
            self.note_load()

    def wake(self, grants: list[Grant]) -> None:
        for grant in grants:
            started = self._waiters.get(grant.ticket)
            if started is not None and not started.done():
                started.set_result(None)
