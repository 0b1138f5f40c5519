"""Sans-IO dynamic batcher: when to start work, and how much of it to start together.

Rules
    * Items wait in arrival order (FIFO); ``add`` never reorders.
    * ``take(free, now)`` hands out at most ``min(free, max_batch_size)`` items, oldest first,
      and only when a batch is *due*:
        - a full batch is waiting (``len >= min(free, max_batch_size)``), or
        - the oldest item has waited ``max_wait_s``, or
        - ``busy`` is true: the engine already runs other work, so joining it now costs nothing
          (continuous batching: a new sequence rides along in the next decode step).
      An idle engine thus waits at most ``max_wait_s`` for company, and never when a full batch
      is there.
    * ``deadline()`` is when the oldest item becomes due by waiting: the driver sleeps until then
      or until the next ``add``, whichever is first.
    * ``remove(item)`` drops a waiting item (its client went away).
    * Past ``max_queue`` waiting items ``add`` refuses (returns False) so the caller answers 503.

The batcher imports no threads or asyncio; the engine's decode loop (a thread) and tests drive it
with an injected clock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from voxmesh.clock import monotonic

__all__ = ["DynamicBatcher"]

T = TypeVar("T")


@dataclass
class _Entry(Generic[T]):
    item: T
    arrived: float


class DynamicBatcher(Generic[T]):
    def __init__(
        self,
        max_batch_size: int,
        max_wait_s: float,
        *,
        max_queue: int = 1024,
        clock: Callable[[], float] = monotonic,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be >= 1")
        if max_wait_s < 0:
            raise ValueError("max_wait_s must be >= 0")
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.max_queue = max_queue
        self.clock = clock
        self._queue: deque[_Entry[T]] = deque()

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, item: T) -> bool:
        if len(self._queue) >= self.max_queue:
            return False
        self._queue.append(_Entry(item, self.clock()))
        return True

    def remove(self, item: T) -> bool:
        for entry in self._queue:
            if entry.item is item:
                self._queue.remove(entry)
                return True
        return False

    def deadline(self) -> float | None:
        return self._queue[0].arrived + self.max_wait_s if self._queue else None

    def due(self, free: int, *, busy: bool = False, now: float | None = None) -> bool:
        if not self._queue or free <= 0:
            return False
        if busy or len(self._queue) >= min(free, self.max_batch_size):
            return True
        t = self.clock() if now is None else now
        return t >= self._queue[0].arrived + self.max_wait_s

    def take(self, free: int, *, busy: bool = False, now: float | None = None) -> list[T]:
        """The items to start now (possibly none); ``free`` is how many the engine can take."""
        if not self.due(free, busy=busy, now=now):
            return []
        n = min(free, self.max_batch_size, len(self._queue))
        return [self._queue.popleft().item for _ in range(n)]
