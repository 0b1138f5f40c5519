"""Retry budget (Finagle ``RetryBudget`` / Linkerd): retries are a fraction of requests.

Algorithm
    Every request deposits ``ratio`` tokens (0.2); every retry withdraws one. On top of the
    deposits a constant reserve of ``min_per_s * window_s`` tokens lets a quiet client retry
    at least ``min_per_s`` times per second on average. Deposits and withdrawals expire
    after ``window_s`` (10 s): the balance is ``reserve + sum of entries in the last
    window``, kept in ``slots`` time slices so each call is O(slots).

    So over any window, retries <= min_per_s * window_s + ratio * requests: a failing
    upstream gets at most 20% extra load plus a small floor, never a retry storm.

Limits
    Entries expire a slice at a time (1 s with the defaults), so the window edge is blurred
    by one slice.
"""

from __future__ import annotations

from voxmesh.clock import Clock, monotonic

__all__ = ["RetryBudget"]


class RetryBudget:
    def __init__(
        self,
        *,
        ratio: float = 0.2,
        min_per_s: float = 10.0,
        window_s: float = 10.0,
        slots: int = 10,
        clock: Clock = monotonic,
    ) -> None:
        if ratio < 0 or min_per_s < 0 or window_s <= 0 or slots < 1:
            raise ValueError("ratio, min_per_s >= 0; window_s > 0; slots >= 1")
        self.ratio = ratio
        self.reserve = min_per_s * window_s
        self._slot_s = window_s / slots
        self._clock = clock
        self._slots = [0.0] * slots
        self._current = int(clock() // self._slot_s)
        self.retries = 0
        self.refused = 0

    def _roll(self) -> int:
        index = int(self._clock() // self._slot_s)
        gap = index - self._current
        if gap > 0:
            for k in range(1, min(gap, len(self._slots)) + 1):
                self._slots[(self._current + k) % len(self._slots)] = 0.0
            self._current = index
        return self._current % len(self._slots)

    def balance(self) -> float:
        self._roll()
        return self.reserve + sum(self._slots)

    def deposit(self) -> None:
        """Call once per original request."""
        self._slots[self._roll()] += self.ratio

    def try_withdraw(self) -> bool:
        """Call before each retry; False means the retry must not happen."""
        slot = self._roll()
        # 1e-9: deposits of 0.2 add up to 0.9999999999 rather than 1.0.
        if self.reserve + sum(self._slots) < 1.0 - 1e-9:
            self.refused += 1
            return False
        self._slots[slot] -= 1.0
        self.retries += 1
        return True
