"""Streaming helpers shared by the engines: pieces, in-order release, stop-string scanning.

``InOrder``: segments of one request decode in parallel, but a client must read the translation
front to back. Text of the *current* segment passes straight through; text of later segments is
buffered and released when every segment before it has finished.

``StopScanner``: generated text is shown without its leading whitespace and only up to the first
stop string; text that might be the start of a stop string (a trailing ``"\\n"`` when the stop is
``"\\n\\n"``) is held back until the next token decides.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["InOrder", "Piece", "StopScanner"]


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
