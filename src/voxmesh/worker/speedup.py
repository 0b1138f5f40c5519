"""What extra threads buy this engine on this CPU: seconds per character per thread class.

Algorithm
    Per thread class ``k`` (``1, 2, 4, ...``; see :func:`~voxmesh.worker.scheduler.thread_classes`)
    the profile keeps one estimate: seconds of inference per cost unit (the worker's unit is
    the segment's characters), with the time it was last updated.

    * Optionally seeded by a calibration at warm-up (``worker.calibration_rounds``, off by
      default: :mod:`voxmesh.worker.calibrate` says why): each class runs
      one fixed sentence a few times and :meth:`SpeedProfile.seed` takes the fastest kept run
      (contention from outside can only add time, so the minimum is the least disturbed).
    * Kept fresh from served segments (:meth:`SpeedProfile.observe`): an EWMA per class
      (``alpha``; the first sample of a class, or one that finds its estimate older than
      ``refresh_s``, replaces it: an old measure is no base to average into). A served
      estimate *settles* after ``min_samples`` samples: until then it is the median of its
      samples and cannot hold a class back (see :meth:`pays`), and the EWMA starts from that
      median. One segment is no measure: the first wide segment of a worker runs while the
      one-thread session is still being made beside it, on a cold arena, and came out 1.5x
      slower than one thread (speed-up 0.65) on a quiet 2-core machine; taken as the
      estimate, it held every lone request on one core for ``refresh_s``. The worker feeds only
      segments that ran on a *steady* worker: not interrupted, and no request started, ended
      or changed its grant while the segment ran (see :class:`~voxmesh.worker.admission.Slot`).
      Such a segment ran in the conditions its class is granted in: on 2 cores a one-core
      segment beside another one-core segment (the price of running side by side is part of
      what one core costs there), an all-core segment alone. Load from outside the worker
      (other processes on the host) cannot be told apart and is not filtered out: it is
      part of what a class costs now, and it costs wide classes more (an intra-op pool waits
      for its slowest thread: under a load average of ~6 on this 2-core machine Piper ran
      0.78-0.86x as fast on 2 threads as on 1, ``benchmarks/reports/calibration.md``). That
      is the point: while the host is that busy, threads do not pay.

    From the estimates:

    * :meth:`speedups`: for each class ``k`` above the first, ``rate(prev) / rate(k)`` with
      ``prev`` the next smaller class (how much faster doubling the threads made a segment).
    * :meth:`useful_max`: walk the classes upwards from 1; a class is useful when it is at
      least ``min_speedup`` times faster than the class before it. The walk stops at the
      first class that does not pay: the scheduler takes one number as its cap
      (``CoreScheduler.set_max_useful``) and rounds shares down to a class below it, so a
      class that does not pay cannot be skipped while a larger one is granted. Thread scaling
      is concave (what doubling ``k`` does not buy, doubling again rarely does), so little is
      lost. A class with no estimate yet counts as useful, so it gets granted and measured;
      so does a class whose estimate has not settled, and the walk stops there until it has;
      ``None`` (no cap from measurement) while nothing is measured.
    * Staleness: a class that does not pay is never granted, so served segments would never
      refresh its estimate, and one disturbed calibration would hold it back for good. When
      the first class that does not pay has not been updated for ``refresh_s`` seconds,
      :meth:`useful_max` lets it through until a served segment at that class updates it (the
      next segments whose share reaches it, at most one class above the cap); that sample replaces the old
      estimate and starts a new one, which settles after ``min_samples`` segments, so a
      calibration that a burst of foreign load disturbed holds nothing back for long. ``refresh_s = inf`` never retries.

Limits
    Seconds per character depend a little on the sentence (a short one pays a fixed cost
    per run), so served estimates are noisier than the calibration; the EWMA smooths it and
    both classes see the same mix. The calibration runs one sentence per class and round:
    a burst of foreign load during it can still mislead until served segments or the
    refresh correct it.

Pure: no I/O and no threads; the clock is injected.
"""

from __future__ import annotations

import itertools
import math
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = ["ClassEstimate", "SpeedProfile"]


@dataclass(frozen=True)
class ClassEstimate:
    seconds_per_unit: float
    updated_at: float
    samples: int  # served segments folded in since the seed (0: calibration only)
    settling: tuple[float, ...] = ()  # the samples of an estimate that has not settled yet


class SpeedProfile:
    """Per thread class, seconds per cost unit; the largest class whose threads still pay."""

    def __init__(self, classes: Iterable[int], *, min_speedup: float = 1.1, alpha: float = 0.2,
                 refresh_s: float = 60.0, min_samples: int = 3,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.classes = tuple(sorted(set(classes)))
        if not self.classes or self.classes[0] < 1:
            raise ValueError("classes must be positive thread counts")
        if min_speedup < 1.0:
            raise ValueError("min_speedup must be >= 1")
        if not 0.0 < alpha <= 1.0:
            raise ValueError("alpha must be within (0, 1]")
        if refresh_s <= 0:
            raise ValueError("refresh_s must be > 0")
        if min_samples < 1:
            raise ValueError("min_samples must be >= 1")
        self.min_samples = min_samples
        self.min_speedup = min_speedup
        self.alpha = alpha
        self.refresh_s = refresh_s
        self.clock = clock
        self._est: dict[int, ClassEstimate] = {}

    def estimate(self, threads: int) -> ClassEstimate | None:
        return self._est.get(threads)

    def seconds_per_unit(self) -> dict[int, float]:
        return {k: e.seconds_per_unit for k, e in sorted(self._est.items())}

    def seed(self, threads: int, seconds_per_unit: float) -> None:
        """Set a class's estimate outright (the calibration)."""
        if threads in self.classes and seconds_per_unit > 0 and math.isfinite(seconds_per_unit):
            self._est[threads] = ClassEstimate(seconds_per_unit, self.clock(), 0)

    def observe(self, threads: int, cost: float, seconds: float) -> None:
        """A served segment of ``cost`` units took ``seconds`` on ``threads`` threads."""
        if threads not in self.classes or cost <= 0 or seconds <= 0 or not math.isfinite(seconds):
            return
        rate = seconds / cost
        now = self.clock()
        old = self._est.get(threads)
        fresh = old if old is not None and now - old.updated_at < self.refresh_s else None  # else: start afresh
        if fresh is not None and self.settled(fresh):
            ewma = fresh.seconds_per_unit + self.alpha * (rate - fresh.seconds_per_unit)
            self._est[threads] = ClassEstimate(ewma, now, fresh.samples + 1)
            return
        settling = (*(fresh.settling if fresh else ()), rate)
        done = len(settling) >= self.min_samples  # settled: the EWMA takes over from the median
        self._est[threads] = ClassEstimate(statistics.median(settling), now, len(settling), () if done else settling)

    def settled(self, est: ClassEstimate) -> bool:
        """A seed, or a served estimate of at least ``min_samples`` samples."""
        return not est.settling

    def speedups(self) -> dict[int, float]:
        """``k -> rate(previous class) / rate(k)`` where both are measured (settled or not)."""
        out: dict[int, float] = {}
        for prev, k in itertools.pairwise(self.classes):
            a, b = self._est.get(prev), self._est.get(k)
            if a is not None and b is not None:
                out[k] = a.seconds_per_unit / b.seconds_per_unit
        return out

    def pays(self, threads: int) -> bool | None:
        """Whether ``threads`` is at least ``min_speedup`` faster than the class below it
        (``None``: not measured or not settled, either class, or the first class)."""
        i = self.classes.index(threads)
        if i == 0:
            return None
        for k in (self.classes[i - 1], threads):
            est = self._est.get(k)
            if est is not None and not self.settled(est):
                return None
        speedup = self.speedups().get(threads)
        return None if speedup is None else speedup >= self.min_speedup

    def useful_max(self) -> int | None:
        """The largest class reached from 1 through classes that pay (see the module doc);
        ``None`` while nothing is measured."""
        if not self._est:
            return None
        useful = self.classes[0]
        for k in self.classes[1:]:
            est = self._est.get(k)
            if est is not None and not self.settled(est):
                useful = k  # being measured: granted, and no class above it until it settles
                break
            if self.pays(k) is False:
                est = self._est[k]
                if self.clock() - est.updated_at >= self.refresh_s:
                    useful = k  # stale: let it be measured again, and go no further
                break
            useful = k
        return useful
