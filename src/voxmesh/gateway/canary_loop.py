"""Drive a canary analysis (``canary.py``) from the data plane's live figures.

Each :meth:`CanaryLoop.step` reads the canary deployment's request count, success rate and
latency histogram, takes the difference with the previous step (so a check sees only the
last interval, as Flagger's range queries do), calls the pure ``decide`` and applies the
new weight to the traffic split of the public model. :meth:`run` repeats that every
``check_every_s`` until the analysis ends; the decisions and their reasons are in the
returned state's log.

Limits
    Figures are the gateway's own (time to first byte per client request, status < 500 as
    success), not a Prometheus query; one gateway process sees only its own traffic.
"""

from __future__ import annotations

import asyncio
import math
from typing import Protocol

from voxmesh.clock import Clock, monotonic
from voxmesh.gateway.canary import (
    CanaryConfig,
    CanaryPhase,
    CanaryState,
    Decision,
    Snapshot,
    decide,
    split_weights,
)
from voxmesh.observability.metrics import HistogramChild

__all__ = ["CanaryLoop"]


class _Plane(Protocol):
    def set_split(self, model: str, weights: dict[str, float]) -> None: ...

    @property
    def golden(self) -> _Golden: ...


class _Golden(Protocol):
    def deployment_totals(self, deployment: str) -> tuple[int, int, HistogramChild]: ...


def _minus(now: HistogramChild, before: HistogramChild | None) -> HistogramChild:
    out = HistogramChild(now.bounds)
    out.counts = [a - (before.counts[i] if before else 0) for i, a in enumerate(now.counts)]
    out.count = sum(out.counts)
    out.sum = now.sum - (before.sum if before else 0.0)
    # Extremes of the interval alone are unknown: the bucket bounds will do.
    out.min, out.max = 0.0, now.max
    return out


class CanaryLoop:
    def __init__(self, plane: _Plane, *, model: str, primary: str, canary: str, config: CanaryConfig,
                 clock: Clock = monotonic) -> None:  # fmt: skip
        self.plane, self.model, self.primary, self.canary = plane, model, primary, canary
        self.config = config
        self.clock = clock
        self._last: tuple[int, int, HistogramChild] | None = None

    def _snapshot(self) -> Snapshot:
        requests, successes, hist = self.plane.golden.deployment_totals(self.canary)
        base_r, base_s, base_h = self._last if self._last is not None else (0, 0, None)
        window = _minus(hist, base_h)
        self._last = (requests, successes, hist)
        n = requests - base_r
        p99 = window.quantile(0.99) if window.count else math.nan
        return Snapshot(
            now=self.clock(),
            success_rate=(successes - base_s) / n if n else 1.0,
            p99_ms=0.0 if math.isnan(p99) else p99 * 1000.0,
            requests=n,
        )

    def step(self, state: CanaryState) -> tuple[Decision, CanaryState]:
        if (
            state.phase is not CanaryPhase.INITIALIZED
            and self.clock() - state.last_check < self.config.interval_s
        ):
            return Decision.WAIT, state  # keep accumulating the interval's figures
        decision, new = decide(self.config, self._snapshot(), state)
        if new.weight != state.weight or decision is Decision.PROMOTE:
            self.plane.set_split(self.model, split_weights(self.primary, self.canary, new.weight))
        return decision, new

    async def run(self, state: CanaryState | None = None, check_every_s: float = 1.0) -> CanaryState:
        state = state or CanaryState()
        while state.phase not in (CanaryPhase.PROMOTED, CanaryPhase.ROLLED_BACK):
            _, state = self.step(state)
            await asyncio.sleep(check_every_s)
        return state
