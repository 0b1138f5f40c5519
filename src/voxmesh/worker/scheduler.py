"""Load-adaptive core scheduler: a fair FIFO admission queue over the worker's cores.

Algorithm
    The worker owns ``cores`` cores. At most ``cores`` inferences run at once, and waiting
    requests start in order (below; FIFO across all connections when no cost is given, so no
    request is pinned behind a busy keep-alive connection). Each *segment* (sentence) of a
    running request is given a thread count when it starts (:meth:`threads_for`):

    * alone (nothing else running, nobody waiting): all cores, because one request using every
      core has the lowest latency (Piper: 220 ms with 2 threads vs 390 ms with 1);
    * otherwise: one core, because one request per core has the best throughput
      (Piper: 22.2 vs 19.9 audio-s/s) and no two intra-op pools fight over the cores.

    The cores are never oversubscribed: while a segment runs with all cores, a newcomer
    waits for that segment to end (one sentence) instead of starting beside it. Then the
    running request drops to one core for its next segment and :meth:`admit_waiting` starts
    the newcomer on the other. Running a 2-thread and a 1-thread inference at once on 2
    cores is the worst case: measured in one process (Kokoro, one sentence), the wide run
    took 3.1-3.3 s instead of 1.5-2.0 s alone and the pair 3.9 s of wall time, where two
    one-thread runs side by side take 2.9-3.3 s.

    Hysteresis (``calm_s``): "alone" also needs ``calm_s`` seconds without contention
    (two requests in flight, or one waiting), counted from the moment the contention ended
    (a request finished beside another), not from the last grant: a Kokoro sentence takes
    ~2.7 s on one core, so at steady concurrency 2 the last grant is often older than
    ``calm_s`` while the load has never dropped. Under steady concurrency 2 a request often
    finds the worker empty for a moment (its peer's answer is on the wire and the next
    request is not in yet); granting it every core would make its peer's next request wait
    for a whole segment. With the hysteresis the worker stays in one-core-per-request mode
    until the load has really dropped to one request for ``calm_s``. ``calm_s = 0`` (the
    default here; the worker passes its setting) decides on the instant alone.

    Taking back a fresh wide segment (``preempt_frac``): when a newcomer finds a lone
    request whose all-core segment started less than ``preempt_frac`` of that segment's
    expected time ago (``threads_for(..., cost=...)``), waiting the segment out would cost
    more than starting over: the running request gives its cores back (its ticket comes out
    of :meth:`take_preempted`; the worker stops that inference, see
    :class:`~voxmesh.engines.base.Interrupt`, and runs the segment again on one core) and the
    newcomer starts at once on the other core. With ``W`` the segment's all-core time, ``s``
    the one-core slowdown (one-core time / all-core time) and ``e`` the time already run,
    both requests finish sooner in sum when ``e < W (2 - s)``: ``0.4 W`` here, where s is
    ~1.6 on 2 cores for both engines (``benchmarks/reports/peers.md``, raw p50 with one
    process of 2 threads vs two of 1: Piper 212 vs 338 ms, Kokoro 1760 vs 2749 ms). The
    default 0 never preempts; the worker passes its setting (0.25, below 0.4 W because the
    expected time is an estimate). It is what a burst after idle needs: two requests 1 ms
    apart no longer cost the second a whole sentence of waiting. Measured
    (``benchmarks/reports/burst.md``, two sentences sent at once to an idle worker): the
    pair's makespan 0.72x (Piper) and 0.67x (Kokoro), mean latency 0.97x and 0.91x.

    Order of the waiting list: by *latest start time* ``arrival - cost`` (ties: arrival
    order), where ``cost`` is the caller's estimate of the request's service time in the
    same unit as ``now`` (earliest-deadline-first on the deadline ``arrival + L - cost``):
    a long request starts a little earlier, a short one a little later, so that a request's
    latency does not grow with its length. With no cost given (the default, 0) it is plain
    FIFO. It stays fair: a request can be passed only by requests that arrived less than
    the cost difference (one sentence's synthesis time, well under a second) after it, so
    nothing starves. On the benchmark's closed loop (8 clients, 20 sentences of 74-99
    characters), replayed through this class with measured service times
    (``benchmarks/reports/tail.md``): with each sentence at its mean time it takes p99/p50
    from 1.09 (FIFO) to 1.06; with the per-request spread of the machine added (6 % for the
    same sentence) both orders are at ~1.11, which is also what the worker measures.

N cores: thread classes and fair shares
    Grants come from the classes ``1, 2, 4, ...`` up to ``cores`` (``cores`` itself is a
    class, so a lone request still gets every core). A segment's grant is its fair share
    ``cores // demand`` (``demand``: the requests running, this one included, plus those
    waiting; at least 2 during the ``calm_s`` hysteresis) rounded down to a class, capped by
    the cores the others leave free and by ``max_useful_threads`` (the largest class that
    still makes a request of this engine measurably faster: Kokoro int8 gains nothing past
    2 threads on a 16-core Xeon, ``../shared/bench/kokoro_16core_xeon.txt``). A waiter
    starts whenever a core is free (and fewer than ``cores`` requests run), so no core idles
    while a request waits. On 2 cores this is exactly the rule above: alone 2, else 1.
    A preempted request re-runs its segment on one core; its later segments get their
    share again.

    The cap is measured, not only configured. Thread scaling is a property of the engine and
    the CPU (issue 18: Piper 463 / 295 / 199 / 140 / 109 ms at 1 / 2 / 4 / 8 / 16 threads on
    a 16-core Xeon; Kokoro int8 9.6 / 8.3 / 10.4 s at 1 / 2 / 4), so the worker keeps a
    :class:`~voxmesh.worker.speedup.SpeedProfile`: seconds per character per class, measured
    from served segments that ran on a steady worker (EWMA per class; a class not measured
    yet counts as useful, so it is granted and measured), and optionally seeded by a
    calibration before the worker is ready (``worker.calibration_rounds = 1``, off by default
    for the start time: :mod:`voxmesh.worker.calibrate`). Its ``useful_max()`` is the
    largest class reached from 1 through classes each at least ``worker.speedup_min``
    (1.1) times faster than the class below. Before every grant admission hands it to
    :meth:`set_max_useful`; the cap in use is the smaller of it and the configured
    ``max_useful_threads`` (measuring never raises a configured cap). So a request is never
    handed threads that do not make it faster, and the cores they would have taken run
    more requests side by side: with a cap of ``c`` a lone request gets ``c`` threads and
    ``cores // c`` requests start at once. The scheduler itself stays pure: it takes the
    number, it never times anything. A class measured not to pay is retried (the next
    segments whose share reaches it, until one of them measures it again) once its measure
    is ``worker.speedup_refresh_s`` (60 s) old, so a calibration disturbed by foreign load
    does not hold the cap down for good.

Limits
    The measured cap is one number: a class that does not pay stops the walk even if a larger
    one would pay over it (``SpeedProfile`` explains why that costs little). Powers of two
    leave cores idle when the share is not one (3 requests on 16 cores run on 4 threads each;
    a fourth request takes the 4 idle ones). A newcomer that finds a lone request mid-segment
    with all cores (and past the ``preempt_frac`` window) waits up to one segment (Piper
    ~0.2 s, Kokoro ~1.7 s for a long sentence on these machines). ``max_queue`` bounds
    the waiting list; past it :meth:`submit` answers ``REJECTED`` (the worker sends 503).

Sans-IO: no asyncio, no threads. The worker wraps it with futures (``worker/admission.py``).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from enum import Enum

__all__ = ["Admit", "CoreScheduler", "Grant", "class_at_most", "thread_classes"]


class Admit(Enum):
    RUN = "run"
    QUEUED = "queued"
    REJECTED = "rejected"


@dataclass(frozen=True)
class Grant:
    ticket: int
    threads: int


def thread_classes(cores: int) -> tuple[int, ...]:
    """``1, 2, 4, ...`` below ``cores``, then ``cores`` itself."""
    out = []
    k = 1
    while k < cores:
        out.append(k)
        k *= 2
    out.append(cores)
    return tuple(out)


def class_at_most(classes: tuple[int, ...], limit: int) -> int:
    """The largest class not above ``limit`` (1 at least)."""
    best = classes[0]
    for c in classes:
        if c <= limit:
            best = c
    return best


class CoreScheduler:
    def __init__(self, cores: int, max_queue: int, calm_s: float = 0.0, preempt_frac: float = 0.0,
                 max_useful_threads: int | None = None) -> None:
        if cores < 1:
            raise ValueError("cores must be >= 1")
        if max_useful_threads is not None and max_useful_threads < 1:
            raise ValueError("max_useful_threads must be >= 1")
        if calm_s < 0:
            raise ValueError("calm_s must be >= 0")
        if not 0.0 <= preempt_frac <= 1.0:
            raise ValueError("preempt_frac must be within [0, 1]")
        self.cores = cores
        self.classes = thread_classes(cores)
        #: the engine option (``cores`` when not set); :meth:`set_max_useful` can only lower it
        self.configured_useful_threads = min(cores, max_useful_threads or cores)
        #: the cap in use: the configured one, or the measured one when lower
        self.max_useful_threads = self.configured_useful_threads
        self.max_queue = max_queue
        self.calm_s = calm_s
        self.preempt_frac = preempt_frac
        self.preemptions = 0
        self._wide_since: dict[int, tuple[float, float]] = {}  # ticket -> (segment start, expected time)
        self._preempted: list[int] = []
        self._narrow_next: set[int] = set()  # preempted: the re-run segment gets one core
        self._contended_at = float("-inf")
        self.wide_grants = 0  # segments started with all cores / one core (threads_for calls)
        self.narrow_grants = 0
        self.grants_by_threads: dict[int, int] = {}  # segments started, by granted thread class
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

    @property
    def threads_granted(self) -> int:
        """Threads granted to the running requests' current segments (never above ``cores``)."""
        return sum(self._running.values())

    def threads_for(self, ticket: int, now: float = 0.0, cost: float = 0.0) -> int:
        """Thread count for the next segment of a running request (re-evaluated per segment).
        If it drops from all cores to one, call :meth:`admit_waiting` to start the waiters.
        ``cost``: the segment's expected time with all cores (0: unknown, never preempted)."""
        if ticket not in self._running:
            raise KeyError(ticket)
        self._running[ticket] = 0  # its previous segment is over: its threads are free
        threads = self._grant_threads(others=len(self._running) - 1, now=now)
        if ticket in self._narrow_next:
            self._narrow_next.discard(ticket)
            threads = 1
        self._running[ticket] = threads
        self.grants_by_threads[threads] = self.grants_by_threads.get(threads, 0) + 1
        self._wide_since.pop(ticket, None)
        if threads > 1:
            self.wide_grants += 1
            self._wide_since[ticket] = (now, cost)
        else:
            self.narrow_grants += 1
        return threads

    def set_max_useful(self, measured: int | None) -> None:
        """The largest class that still pays as measured (``SpeedProfile.useful_max``; ``None``:
        not measured). The cap in use becomes the smaller of it and the configured one; running
        segments keep their grants, the next ones follow it."""
        cap = self.configured_useful_threads
        if measured is not None:
            cap = min(cap, max(1, measured))
        self.max_useful_threads = cap

    def take_preempted(self) -> list[int]:
        """Tickets whose all-core segment was taken back since the last call: stop their
        inference; their next :meth:`threads_for` grants one core."""
        out, self._preempted = self._preempted, []
        return out

    def _take_back_fresh_wide(self, now: float) -> bool:
        """A lone all-core segment younger than ``preempt_frac`` of its expected time drops
        to one core (see the module doc)."""
        if self.preempt_frac <= 0 or len(self._running) != 1:
            return False
        ((ticket, threads),) = self._running.items()
        started, expected = self._wide_since.get(ticket, (0.0, 0.0))
        if threads <= 1 or expected <= 0 or now - started >= self.preempt_frac * expected:
            return False
        self._running[ticket] = 1
        del self._wide_since[ticket]
        self._narrow_next.add(ticket)
        self._preempted.append(ticket)
        self.preemptions += 1
        return True

    def _has_room(self) -> bool:
        """A free core (no more than ``cores`` requests, and their grants leave one)."""
        return len(self._running) < self.cores and self.threads_granted < self.cores

    def admit_waiting(self, now: float = 0.0) -> list[Grant]:
        """Start waiters while there is room; returns the newly started."""
        started: list[Grant] = []
        while self._waiting and self._has_room():
            _, nxt = heapq.heappop(self._waiting)
            self._queued.discard(nxt)
            started.append(self._start(nxt, now))
        return started

    def _grant_threads(self, others: int, now: float) -> int:
        """The fair share of the cores rounded down to a class, capped by the free cores and
        ``max_useful_threads``; contention is remembered, and within ``calm_s`` of it the
        share is at most half the cores (on 2 cores: all cores alone and calm, else one)."""
        if others > 0 or self._waiting:
            self._contended_at = now
        demand = others + 1 + len(self._waiting)
        if now - self._contended_at < self.calm_s:
            demand = max(demand, 2)
        free = self.cores - self.threads_granted
        share = min(self.cores // demand, free, self.max_useful_threads)
        return class_at_most(self.classes, max(1, share))

    def submit(self, ticket: int, *, now: float = 0.0, cost: float = 0.0) -> tuple[Admit, Grant | None]:
        """Admit ``ticket`` (tickets increase with arrival). ``now`` (monotonic seconds) dates
        contention for the hysteresis; with ``cost`` (estimated service time, same unit) it
        orders the waiting list. Leave both out for FIFO with no hysteresis."""
        if ticket in self._running or ticket in self._queued:
            raise ValueError(f"ticket {ticket} already submitted")
        if not self._waiting and (self._has_room() or self._take_back_fresh_wide(now)):
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
            if len(self._running) > 1 or self._waiting:
                self._contended_at = now  # contention lasts until it ends here, not from its start
            del self._running[ticket]
            self._wide_since.pop(ticket, None)
            self._narrow_next.discard(ticket)
        else:
            if ticket in self._queued:
                self._queued.discard(ticket)
                self._waiting = [w for w in self._waiting if w[1] != ticket]
                heapq.heapify(self._waiting)
            return []
        return self.admit_waiting(now)

    def _start(self, ticket: int, now: float) -> Grant:
        threads = self._grant_threads(others=len(self._running), now=now)  # before it counts
        self._running[ticket] = threads
        return Grant(ticket, threads)
