"""Per-stage latency of one speech request in a worker.

Stages, in the order a request meets them (:data:`STAGES`):

=========  ==================================================================================
queue      from the parsed request to its core grant (the scheduler's wait)
normalize  planning: voice and language, inline markup, text normalization, chunking,
           pronunciation dictionary and overrides (:func:`voxmesh.worker.synthesis.plan_speech`)
g2p        grapheme to phoneme inside the engine (espeak for Piper, misaki / espeak /
           pyopenjtalk for Kokoro); an engine that does not report it has 0 here
inference  the engine's call minus its g2p: the model itself
prosody    trim, time stretch, pitch and gain, pause, resampling (after the model)
encode     wav/mp3/opus/... encoding of the PCM
=========  ==================================================================================

A request owns one :class:`StageTimes`. Code that runs on the event loop times a block with
``times.time(stage)``; the engine, called from a worker thread, reports its g2p through
:func:`stage`, which finds the request's :class:`StageTimes` in a context variable that
:func:`bound` sets for the thread's call (``run_in_executor`` does not carry context).

Fault injection for tests (``worker.fault_stage`` + ``worker.fault_stage_delay_ms``): every
time the named stage runs it also sleeps that long, in the thread where the stage runs
(``normalize`` and ``encode`` run on the worker's event loop, as the real work does, so a
slow normalization there blocks the loop just as a pathological dictionary would).

Limits
    One request's segments run one after another, so a :class:`StageTimes` is never written
    by two threads at once. ``queue`` is measured by the server, not by a block here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

__all__ = ["STAGES", "StageFault", "StageTimes", "bound", "parse_server_timing", "stage"]

STAGES: tuple[str, ...] = ("queue", "normalize", "g2p", "inference", "prosody", "encode")

_current: ContextVar[StageTimes | None] = ContextVar("voxmesh_stage_times", default=None)


@dataclass(frozen=True)
class StageFault:
    """Sleep ``delay_s`` every time ``stage`` runs (tests only)."""

    stage: str
    delay_s: float
    sleep: Callable[[float], None] = time.sleep


class StageTimes:
    """Seconds spent per stage by one request (sums over its segments)."""

    def __init__(self, *, clock: Callable[[], float] = time.perf_counter, fault: StageFault | None = None) -> None:
        self.clock = clock
        self.fault = fault
        self.seconds: dict[str, float] = dict.fromkeys(STAGES, 0.0)

    def add(self, name: str, seconds: float) -> None:
        if name not in self.seconds:
            raise ValueError(f"unknown stage {name!r}; stages are {STAGES}")
        self.seconds[name] += max(0.0, seconds)

    @contextmanager
    def time(self, name: str) -> Iterator[None]:
        t0 = self.clock()
        try:
            if self.fault is not None and self.fault.stage == name and self.fault.delay_s > 0:
                self.fault.sleep(self.fault.delay_s)
            yield
        finally:
            self.add(name, self.clock() - t0)

    def server_timing(self, names: tuple[str, ...] = STAGES) -> str:
        """``queue;dur=1.2, normalize;dur=0.3, ...`` in milliseconds."""
        return ", ".join(f"{n};dur={1000 * self.seconds[n]:.1f}" for n in names)


@contextmanager
def bound(times: StageTimes | None) -> Iterator[None]:
    """Make ``times`` the current request's for :func:`stage` calls in this block."""
    token = _current.set(times)
    try:
        yield
    finally:
        _current.reset(token)


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Time a block into the current request's :class:`StageTimes`; nothing when none is bound
    (warm-up, tests calling an engine directly)."""
    times = _current.get()
    if times is None:
        yield
        return
    with times.time(name):
        yield


def parse_server_timing(header: str) -> dict[str, float]:
    """``Server-Timing`` -> {name: milliseconds} (entries without ``dur`` are left out)."""
    out: dict[str, float] = {}
    for entry in header.split(","):
        name, *params = (p.strip() for p in entry.split(";"))
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "dur" and name:
                try:
                    out[name] = float(value.strip().strip('"'))
                except ValueError:
                    continue
    return out
