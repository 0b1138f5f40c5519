"""A lease held while an engine is busy, for engines that run one decode loop rather than
segments (llama.cpp: continuous batching, so no request boundary to lease at).

The loop calls :meth:`BusyLease.hold` before each step: the first call after idle leases
cores (blocking the loop's own thread while the budget is spent), later calls renew the
lease every ``renew_s`` (the old lease returned in the same locked step), so under
contention the loop falls back to its deployment's share within ``renew_s`` instead of
keeping what it took while alone. ``hold`` returns the cores to run the next step on when
they changed (the loop sets its thread count), else None. :meth:`idle` returns the lease
when the loop has nothing to do.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from voxmesh.hostcores.broker import CoreBroker

__all__ = ["BusyLease"]


class BusyLease:
    def __init__(self, broker: CoreBroker, deployment: str, want: int, *, renew_s: float = 0.25,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.broker = broker
        self.deployment = deployment
        self.want = max(1, want)
        self.renew_s = renew_s
        self.clock = clock
        self.ticket: int | None = None
        self.cores = 0
        self._since = 0.0
        self._mu = threading.Lock()

    def hold(self) -> int | None:
        """Before a step: the cores for it when they changed (a new or renewed lease), else None."""
        with self._mu:
            now = self.clock()
            if self.ticket is not None and now - self._since < self.renew_s:
                return None
            self.ticket, cores = self.broker.acquire(self.deployment, self.want, returning=self.ticket)
            self._since = now
            changed, self.cores = cores != self.cores, cores
            return cores if changed else None

    def idle(self) -> None:
        """Nothing to decode: the cores go back to the budget."""
        with self._mu:
            if self.ticket is not None:
                ticket, self.ticket = self.ticket, None
                self.broker.release(ticket)
