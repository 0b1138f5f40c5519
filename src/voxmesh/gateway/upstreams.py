"""Live state of the upstreams of each deployment, and the bookkeeping of one attempt.

An :class:`Upstream` is one endpoint with its peak-EWMA load, its breaker (the kind the
:class:`~voxmesh.gateway.meshmode.DataPlanePolicy` chooses) and its cached
metric children; a :class:`Deployment` is the pool of upstreams behind one backend name
with its retry budget. :class:`Attempt` brackets one try on one upstream so the breaker,
the in-flight count and the metrics see exactly one start and one end, even when the
request is cancelled half-way (then the breaker's probe slot is given back, no outcome).
"""

from __future__ import annotations

import random
from types import TracebackType
from typing import TYPE_CHECKING, Any

from voxmesh.clock import Clock
from voxmesh.gateway.balancer.ewma import PeakEwma
from voxmesh.gateway.balancer.p2c import Candidate
from voxmesh.gateway.balancer.pool import Endpoint, Pool
from voxmesh.gateway.golden import EdgeStats, EndpointStats, GoldenMetrics, summary
from voxmesh.gateway.meshmode import DataPlanePolicy
from voxmesh.gateway.resilience.breaker import Breaker, Ticket
from voxmesh.gateway.resilience.classify import Outcome
from voxmesh.gateway.resilience.retry_budget import RetryBudget
from voxmesh.settings import GatewaySettings

if TYPE_CHECKING:
    from voxmesh.gateway.resilience.no_ejection import NoEjection

__all__ = ["Attempt", "Deployment", "Upstream"]


class Upstream:
    __slots__ = ("breaker", "endpoint", "ewma", "max_in_flight", "stats")

    def __init__(self, endpoint: Endpoint, settings: GatewaySettings, clock: Clock, rng: random.Random,
                 stats: EndpointStats, policy: DataPlanePolicy | None = None) -> None:  # fmt: skip
        self.endpoint = endpoint
        self.ewma = PeakEwma(
            default_rtt_s=settings.ewma_default_rtt_ms / 1000.0, decay_s=settings.ewma_decay_s, clock=clock
        )
        policy = policy if policy is not None else DataPlanePolicy.from_settings(settings)
        self.breaker: Breaker | NoEjection = policy.new_breaker(settings, rng)
        self.max_in_flight = settings.max_in_flight_per_endpoint
        self.stats = stats

    def candidate(self, now: float) -> Candidate:
        return Candidate(
            self.endpoint.id,
            self.ewma.cost(self.endpoint.weight, now),
            self.ewma.pending,
            self.max_in_flight,
            not self.breaker.available(now),
        )

    def view(self, now: float) -> dict[str, Any]:
        ep = self.endpoint
        return {
            "id": ep.id,
            "url": ep.url,
            "identity": ep.identity,
            "weight": ep.weight,
            "breaker": self.breaker.state(now).value,
            "consecutive_failures": self.breaker.consecutive_failures,
            "in_flight": self.ewma.pending,
            "ewma_ms": round(self.ewma.estimate() * 1000.0, 3),
            **summary(self.stats.requests, self.stats.successes, self.stats.latency),
        }


class Deployment:
    def __init__(self, name: str, settings: GatewaySettings, clock: Clock, rng: random.Random,
                 policy: DataPlanePolicy | None = None) -> None:  # fmt: skip
        self.name = name
        self.policy = policy
        self.settings = settings
        self.clock = clock
        self.rng = rng
        self.pool = Pool()
        self.upstreams: dict[str, Upstream] = {}
        self.budget = RetryBudget(
            ratio=settings.retry_ratio,
            min_per_s=settings.retry_min_per_s,
            window_s=settings.retry_window_s,
            clock=clock,
        )

    def add(self, endpoint: Endpoint, stats: EndpointStats) -> None:
        self.upstreams[endpoint.id] = Upstream(endpoint, self.settings, self.clock, self.rng, stats, self.policy)

    def candidates(self, now: float) -> list[Candidate]:
        return [up.candidate(now) for up in self.upstreams.values()]


class Attempt:
    """``with Attempt(...) as att: ... att.end(outcome, latency)``; leaving without end() abandons."""

    __slots__ = ("_done", "clock", "edge", "golden", "ticket", "up")

    def __init__(self, up: Upstream, edge: EdgeStats, golden: GoldenMetrics, clock: Clock) -> None:
        self.up, self.edge, self.golden, self.clock = up, edge, golden, clock
        self._done = False
        self.ticket: Ticket | None = None

    def __enter__(self) -> Attempt:
        self.ticket = self.up.breaker.dispatch(self.clock())
        self.up.ewma.start()
        self.up.stats.in_flight.inc()
        return self

    def _close(self) -> None:
        self._done = True
        self.up.ewma.finish()
        self.up.stats.in_flight.dec()

    def end(self, outcome: Outcome, latency: float | None) -> None:
        if self._done:
            return
        assert self.ticket is not None
        self._close()
        self.up.breaker.record(self.ticket, outcome, self.clock())
        self.golden.attempt_done(self.edge, self.up.stats, outcome, latency)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self._done:
            assert self.ticket is not None
            self._close()
            self.up.breaker.abandon(self.ticket, self.clock())
