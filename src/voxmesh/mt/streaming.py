"""Streaming helpers shared by the engines: pieces, in-order release, stop-string scanning.

``InOrder``: segments of one request decode in parallel, but a client must read the translation
front to back. Text of the *current* segment passes straight through; text of later segments is
buffered and released when every segment before it has finished.

``ordered`` / ``aordered``: an engine that reports through callbacks from its own thread
(``on_text(k, text)``, ``on_done(k, handle)``) becomes an iterator of ``(k, text)`` in segment
order, sync or async; the event loop never blocks on the engine thread. Leaving the iterator
early cancels every handle.

``StopScanner``: generated text is shown without its leading whitespace and only up to the first
stop string; text that might be the start of a stop string (a trailing ``"\\n"`` when the stop is
``"\\n\\n"``) is held back until the next token decides.
"""

from __future__ import annotations

import asyncio
import queue
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from voxmesh.errors import VoxmeshError

__all__ = ["Handle", "InOrder", "Piece", "Start", "StopScanner", "aordered", "ordered"]


@dataclass(frozen=True)
class Piece:
    """A streamed piece of translation ``index`` (the position in the caller's list)."""

    index: int
    text: str


class InOrder:
    def __init__(self, n: int) -> None:
        self.buffers: list[list[str]] = [[] for _ in range(n)]
        self.done: set[int] = set()
        self.current = 0

    def add(self, k: int, text: str) -> list[tuple[int, str]]:
        if k == self.current:
            return [(k, text)]
        self.buffers[k].append(text)
        return []

    def finish(self, k: int) -> list[tuple[int, str]]:
        self.done.add(k)
        out: list[tuple[int, str]] = []
        while self.current in self.done:
            self.current += 1
            if self.current < len(self.buffers):
                out += [(self.current, t) for t in self.buffers[self.current]]
                self.buffers[self.current].clear()
        return out


class StopScanner:
    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = tuple(s for s in stops if s)
        self.raw = ""
        self.emitted = 0
        self.stopped = False

    @property
    def text(self) -> str:
        """The visible text so far (complete once ``stopped`` or the generation ended)."""
        visible = self.raw.lstrip()
        cuts = [i for i in (visible.find(s) for s in self.stops) if i >= 0]
        return visible[: min(cuts)] if cuts else visible

    def feed(self, text: str) -> str:
        """Add generated text; returns the newly visible part (may be empty)."""
        if self.stopped:
            return ""
        self.raw += text
        visible = self.raw.lstrip()
        cuts = [i for i in (visible.find(s) for s in self.stops) if i >= 0]
        if cuts:
            self.stopped = True
            safe = visible[: min(cuts)]
        else:
            hold = max((k for s in self.stops for k in range(1, len(s)) if visible.endswith(s[:k])), default=0)
            safe = visible[: len(visible) - hold]
        return self._advance(safe)

    def flush(self) -> str:
        """The generation ended: release whatever was held back."""
        return self._advance(self.text)

    def _advance(self, safe: str) -> str:
        new = safe[self.emitted :] if len(safe) > self.emitted else ""
        self.emitted = max(self.emitted, len(safe))
        return new


class Handle(Protocol):
    error: VoxmeshError | None

    def cancel(self) -> None: ...


# start(on_text, on_done) submits the work and returns one handle per segment
Start = Callable[[Callable[[int, str], None], Callable[[int, Handle], None]], Sequence[Handle]]


def _release(order: InOrder, handles: Sequence[Handle], k: int, text: str | None) -> list[tuple[int, str]]:
    if text is not None:
        return order.add(k, text)
    if handles[k].error is not None:
        raise handles[k].error  # type: ignore[misc]
    return order.finish(k)


def ordered(start: Start) -> Iterator[tuple[int, str]]:
    q: queue.Queue[tuple[int, str | None]] = queue.Queue()
    handles = start(lambda k, t: q.put((k, t)), lambda k, h: q.put((k, None)))
    order = InOrder(len(handles))
    try:
        remaining = len(handles)
        while remaining:
            k, t = q.get()
            remaining -= t is None
            yield from _release(order, handles, k, t)
    finally:
        for h in handles:
            h.cancel()


async def aordered(start: Start) -> AsyncIterator[tuple[int, str]]:
    loop = asyncio.get_running_loop()
    q: asyncio.Queue[tuple[int, str | None]] = asyncio.Queue()

    def put(item: tuple[int, str | None]) -> None:
        loop.call_soon_threadsafe(q.put_nowait, item)

    handles = start(lambda k, t: put((k, t)), lambda k, h: put((k, None)))
    order = InOrder(len(handles))
    try:
        remaining = len(handles)
        while remaining:
            k, t = await q.get()
            remaining -= t is None
            for item in _release(order, handles, k, t):
                yield item
    finally:
        for h in handles:
            h.cancel()
