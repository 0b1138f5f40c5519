"""Per-route timeouts as pure computations over absolute deadlines.

Three limits (Linkerd's ``timeout.request``, ``timeout.response`` and an idle-stream
limit): the whole request (all attempts, retries and backoff included), the first
response byte of one attempt, and the gap between two chunks of a streamed body. Each
computation answers how long the caller may wait *now* and which limit binds, so the
error can say which timeout fired.

Limits
    The whole-request deadline binds everything: a retry that cannot finish its
    first-byte wait before it is not worth starting (:meth:`Deadlines.can_retry`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = ["Deadlines", "RouteTimeouts", "TimeoutKind"]


class TimeoutKind(Enum):
    REQUEST = "request"
    FIRST_BYTE = "first_byte"
    IDLE = "idle"


@dataclass(frozen=True)
class RouteTimeouts:
    request_s: float = 120.0
    first_byte_s: float = 60.0
    idle_s: float = 30.0

    def __post_init__(self) -> None:
        if min(self.request_s, self.first_byte_s, self.idle_s) <= 0:
            raise ValueError("timeouts must be > 0")

    def start(self, now: float) -> Deadlines:
        return Deadlines(self, now + self.request_s)


@dataclass(frozen=True)
class Deadlines:
    route: RouteTimeouts
    request_deadline: float

    def remaining(self, now: float) -> float:
        return max(0.0, self.request_deadline - now)

    def first_byte(self, now: float) -> tuple[float, TimeoutKind]:
        """How long one attempt may wait for its first byte, starting now."""
        left = self.remaining(now)
        if left <= self.route.first_byte_s:
            return left, TimeoutKind.REQUEST
        return self.route.first_byte_s, TimeoutKind.FIRST_BYTE

    def next_chunk(self, now: float) -> tuple[float, TimeoutKind]:
        """How long to wait for the next chunk of a streamed body, starting now."""
        left = self.remaining(now)
        if left <= self.route.idle_s:
            return left, TimeoutKind.REQUEST
        return self.route.idle_s, TimeoutKind.IDLE

    def can_retry(self, now: float, backoff_s: float) -> bool:
        """A retry after ``backoff_s`` still has time to do something useful."""
        return self.remaining(now + backoff_s) > 0.0
