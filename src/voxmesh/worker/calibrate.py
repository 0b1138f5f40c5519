"""The warm-up calibration that seeds the speed profile (:mod:`voxmesh.worker.speedup`).

Algorithm
    Once the engine is loaded and warmed, and before the worker reports ready (nothing else
    runs on its cores), every thread class that has a session (the engine's
    ``session_classes``: on 2 cores, 1 and 2) synthesizes :data:`CALIBRATION_TEXT`
    ``discard + rounds`` times, the classes taking turns (1, 2, 1, 2, ...) so that a burst of
    foreign load lands on every class alike. The first ``discard`` rounds are thrown away
    (first runs pay page faults and arena growth that later runs do not); a class's time is
    its fastest kept run (load from outside only ever adds time). Only inference is timed:
    the engine's g2p (espeak) is subtracted as the pipeline does for the ``inference`` stage.

    Off by default (``worker.calibration_rounds = 0``): measured on the busy 2-core machine it
    added 1.6 s to a Piper worker's start (``benchmarks/reports/calibration.md``), against a
    start goal of 3 s, and under ``voxmesh up`` several workers load at once, so its all-core
    runs compete with their neighbours' loading and read "2 threads do not pay" where a lone
    request would gain from them (then the lone requests of the next 60 s run on one core). By
    default the profile fills from served segments (:mod:`voxmesh.worker.speedup`: a class
    not yet measured counts as useful, so it is granted and measured). Turn it on
    (``calibration_rounds = 1``, ``calibration_discard = 1``: two runs per class, the second
    kept) on a dedicated host with many cores, where knowing before the first request that,
    say, 16 threads buy nothing over 8 is worth a second of start. The sessions have each run once before (the
    engine's warm-up, the background thread's warm run), but the first run of *this*
    sentence is still slow: with no round discarded, the speed-up of 2 threads over 1
    measured 0.57 (median of 6 starts) against 0.85 with one, where 8 alternating runs in the
    same minutes gave 0.86-0.90 (``benchmarks/reports/calibration.md``).

Cost
    Added to the worker's start: ``(discard + rounds) x (sum over classes of one run)``, plus
    waiting for the background sessions (:class:`~voxmesh.engines.onnx_sessions.SessionPair`)
    that the worker would otherwise let finish while already serving. The sentence is short
    (57 characters) for that reason. Measured start cost: ``benchmarks/reports/calibration.md``.

Which engines
    Those that set ``calibrate_at_start`` (Piper). Kokoro does not: its one-thread session
    and its sentences take seconds (measured under load on 2 cores: 4.4 s waiting for the
    session, 4.2 s for one run per class, on top of a ~6 s start), so its profile fills from
    served segments alone, under its configured cap.

Limits
    English only: an engine that does not speak English is not calibrated (its profile fills
    from served segments). The host core budget (:mod:`voxmesh.hostcores`) is not consulted:
    on a host shared with other busy workers the calibration's all-core runs compete with them
    and may come out slower than they would alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from voxmesh.engines.base import Segment, Span, VoiceMix
from voxmesh.observability.stages import StageTimes, bound

__all__ = ["CALIBRATION_TEXT", "calibrate", "engine_runner"]

CALIBRATION_TEXT = "The patient listener waits quietly for the next sentence."


def calibrate(run: Callable[[int], float], classes: Sequence[int], *, rounds: int = 1,
              discard: int = 1) -> dict[int, float]:
    """Seconds of one run per class: the fastest of ``rounds`` kept runs, after ``discard``
    rounds thrown away, the classes taking turns. ``run(k)`` runs once on ``k`` threads and
    answers its seconds."""
    if rounds < 1 or discard < 0:
        raise ValueError("rounds must be >= 1 and discard >= 0")
    best: dict[int, float] = {}
    for r in range(discard + rounds):
        for k in classes:
            seconds = run(k)
            if r >= discard:
                best[k] = min(seconds, best.get(k, float("inf")))
    return best


def engine_runner(engine: Any, text: str = CALIBRATION_TEXT, language: str = "en",
                  clock: Callable[[], float] = time.perf_counter) -> Callable[[int], float]:
    """``run(k)``: the engine's inference seconds (g2p excluded) for ``text`` on ``k`` threads."""
    default_for = getattr(engine, "default_voice", None)
    voice = VoiceMix.single(default_for(language) if default_for is not None else engine.voices()[0].id)
    segment = Segment((Span(text),), language)

    def run(threads: int) -> float:
        times = StageTimes(clock=clock)
        t0 = clock()
        with bound(times):
            engine.synthesize_segment(segment, voice, 1.0, threads=threads)
        return clock() - t0 - times.seconds["g2p"]

    return run
