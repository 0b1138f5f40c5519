"""Injected time. Policies take ``clock: Clock`` so tests drive them with :class:`FakeClock`."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["Clock", "FakeClock", "monotonic", "wall"]

Clock = Callable[[], float]

monotonic: Clock = time.monotonic
wall: Clock = time.time


class FakeClock:
    """A clock that moves only when told to: ``clock()`` reads, ``advance(dt)`` moves."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, dt: float) -> float:
        if dt < 0:
            raise ValueError("time does not go backwards")
        self.now += dt
        return self.now
