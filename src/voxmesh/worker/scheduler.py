"""Load-adaptive core scheduler: a fair FIFO admission queue over the worker's cores.

Algorithm
    The worker owns ``cores`` cores. At most ``cores`` inferences run at once, and waiting
    requests start strictly in arrival order (FIFO across all connections, so no request is
    pinned behind a busy keep-alive connection). When a request starts it is given a thread
    count:

    * alone (nothing running, nobody waiting): all cores, because one request using every
      core has the lowest latency (Piper: 220 ms with 2 threads vs 390 ms with 1);
    * otherwise: one core, because one request per core has the best throughput
      (Piper: 22.2 vs 19.9 audio-s/s) and no two intra-op pools fight over the cores.

    The grant is per *segment* (sentence): a long request re-asks at each sentence, so a
    request that started alone with all cores drops to one core at its next sentence when
    another request arrives, and vice versa.

    Hysteresis (``calm_s``): "alone" also needs ``calm_s`` seconds without contention
    (two requests in flight, or one waiting). Under steady concurrency 2 a request often
    finds the worker empty for a moment (its peer's answer is on the wire and the next
    request is not in yet); granting it every core would oversubscribe the cores as soon as
    the peer's next request starts with one. With the hysteresis the worker stays in
    one-core-per-request mode until the load has really dropped to one request for
    ``calm_s``. ``calm_s = 0`` (the default here; the worker passes its setting) decides on
    the instant alone.

    Order of the waiting list: by *latest start time* ``arrival - cost`` (ties: arrival
    order), where ``cost`` is the caller's estimate of the request's service time in the
    same unit as ``now``. Under a steady queue every request then has about the same
    latency (wait + service), which is what a tail-latency target asks for: a long
    request starts a little earlier, a short one a little later (earliest-deadline-first
    on the deadline ``arrival + L - cost``, which minimizes the largest latency). With no
    cost given (the default, 0) it is plain FIFO. It stays fair: a request can be passed
    only by requests that arrived less than the cost difference (one sentence's synthesis
    time, well under a second) after it, so nothing starves.

Limits
    A request that arrives while a lone request runs wide starts at once with one core, so
    for at most one segment the cores are oversubscribed by one thread. ``max_queue`` bounds
    the waiting list; past it :meth:`submit` answers ``REJECTED`` (the worker sends 503).

Sans-IO: no asyncio, no threads. The worker wraps it with futures (``worker/admission.py``).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from enum import Enum

__all__ = ["Admit", "CoreScheduler", "Grant"]


class Admit(Enum):
    RUN = "run"
    QUEUED = "queued"
    REJECTED = "rejected"


@dataclass(frozen=True)
class Grant:
    ticket: int
    threads: int


class CoreScheduler:
    def __init__(self, cores: int, max_queue: int, calm_s: float = 0.0) -> None:
        if cores < 1:
            raise ValueError("cores must be >= 1")
        if calm_s < 0:
            raise ValueError("calm_s must be >= 0")
        self.cores = cores
        self.max_queue = max_queue
        self.calm_s = calm_s
        self._contended_at = float("-inf")
        self.wide_grants = 0  # segments started with all cores / one core (threads_for calls)
        self.narrow_grants = 0
        self._running: dict[int, int] = {}
        # heap of (latest start = now - cost, ticket); ticket breaks ties in arrival order
        self._waiting: list[tuple[float, int]] = []
        self._queued: set[int] = set()

    @property
    def in_flight(self) -> int:
        return len(self._running)

    @property
    def queued(self) -> int:
        return len(self._waiting)

    def threads_for(self, ticket: int, now: float = 0.0) -> int:
        """Thread count for the next segment of a running request (re-evaluated per segment)."""
        if ticket not in self._running:
            raise KeyError(ticket)
        threads = self._grant_threads(others=len(self._running) - 1, now=now)
        self._running[ticket] = threads
        if threads > 1:
            self.wide_grants += 1
        else:
            self.narrow_grants += 1
        return threads

    def _grant_threads(self, others: int, now: float) -> int:
        """All cores when nothing else is running or waiting and the worker has been calm
        for ``calm_s``; one core otherwise (and the contention is remembered)."""
        if others > 0 or self._waiting:
            self._contended_at = now
        alone = others == 0 and not self._waiting and now - self._contended_at >= self.calm_s
        return self.cores if alone else 1

    def submit(self, ticket: int, *, now: float = 0.0, cost: float = 0.0) -> tuple[Admit, Grant | None]:
        """Admit ``ticket`` (tickets increase with arrival). ``now`` (monotonic seconds) dates
        contention for the hysteresis; with ``cost`` (estimated service time, same unit) it
        orders the waiting list. Leave both out for FIFO with no hysteresis."""
        if ticket in self._running or ticket in self._queued:
            raise ValueError(f"ticket {ticket} already submitted")
        if len(self._running) < self.cores and not self._waiting:
            grant = self._start(ticket, now)
            return Admit.RUN, grant
        if len(self._waiting) >= self.max_queue:
            return Admit.REJECTED, None
        heapq.heappush(self._waiting, (now - max(0.0, cost), ticket))
        self._queued.add(ticket)
        self._contended_at = now
        return Admit.QUEUED, None

    def release(self, ticket: int, now: float = 0.0) -> list[Grant]:
        """A request finished (or was cancelled, queued or running); returns the newly started."""
        if ticket in self._running:
            del self._running[ticket]
        else:
            if ticket in self._queued:
                self._queued.discard(ticket)
                self._waiting = [w for w in self._waiting if w[1] != ticket]
                heapq.heapify(self._waiting)
            return []
        started: list[Grant] = []
        while self._waiting and len(self._running) < self.cores:
            _, nxt = heapq.heappop(self._waiting)
            self._queued.discard(nxt)
            started.append(self._start(nxt, now))
        return started

    def _start(self, ticket: int, now: float) -> Grant:
        threads = self._grant_threads(others=len(self._running), now=now)
        self._running[ticket] = threads
        return Grant(ticket, threads)
