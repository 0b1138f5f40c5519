"""Golden metrics of the data plane: per route, per endpoint and per edge.

Metric names (Prometheus text on the gateway's ``/metrics``; latencies in seconds)

Per route (one count per client request, whatever the number of attempts):
    voxmesh_route_requests_total{route,deployment,status}   status = HTTP status sent to the client,
                                                             or "stream_error" (a stream broke mid-way)
    voxmesh_route_latency_seconds{route,deployment}          time to the first response byte sent
                                                             to the client (for streaming synthesis:
                                                             time to first audio)
    voxmesh_route_retries_total{route,deployment}            retries (attempts after the first)
Per endpoint (one count per attempt):
    voxmesh_endpoint_requests_total{deployment,endpoint,classification}
                                                             classification = success | retryable | failure
    voxmesh_endpoint_latency_seconds{deployment,endpoint}    first-byte latency of the attempt
    voxmesh_endpoint_in_flight{deployment,endpoint}          requests sent and not finished
    voxmesh_endpoint_breaker_state{deployment,endpoint}      0 closed, 1 open (ejected), 2 half-open
    voxmesh_endpoint_ewma_seconds{deployment,endpoint}       peak-EWMA latency estimate
Per edge (caller -> deployment -> endpoint; caller from the ``X-Voxmesh-Caller`` header, else "client"):
    voxmesh_edge_requests_total{caller,deployment,endpoint,classification}
    voxmesh_edge_latency_seconds{caller,deployment,endpoint}
Per deployment:
    voxmesh_retry_budget_exhausted_total{deployment}         retries refused by the retry budget
    voxmesh_shed_total{deployment,reason}                    requests answered 503 without an attempt
                                                             (reason = no_endpoints | all_ejected | all_saturated)

Success rate: a route request succeeds when the status sent is < 500; an attempt succeeds
when its classification is ``success`` (see ``resilience/classify.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from voxmesh.gateway.resilience.classify import Outcome
from voxmesh.observability.metrics import CounterChild, GaugeChild, HistogramChild, Registry

__all__ = ["EdgeStats", "EndpointStats", "GoldenMetrics", "summary"]


def summary(requests: float, successes: float, hist: HistogramChild) -> dict[str, Any]:
    """The live figures of one node or edge of the topology."""

    def ms(q: float) -> float | None:
        v = hist.quantile(q)
        return None if math.isnan(v) else round(v * 1000.0, 3)

    return {
        "requests": int(requests),
        "success_rate": None if requests == 0 else round(successes / requests, 5),
        "p50_ms": ms(0.5),
        "p95_ms": ms(0.95),
        "p99_ms": ms(0.99),
    }


@dataclass
class EdgeStats:
    """Cached metric children of one (caller, deployment, endpoint) edge: no label lookups per request."""

    by_class: dict[Outcome, CounterChild]
    latency: HistogramChild
    requests: int = 0
    successes: int = 0


@dataclass
class EndpointStats:
    """Cached metric children of one endpoint."""

    by_class: dict[Outcome, CounterChild]
    latency: HistogramChild
    in_flight: GaugeChild
    requests: int = 0
    successes: int = 0


@dataclass
class _RouteStats:
    latency: HistogramChild
    retries: CounterChild
    by_status: dict[str, CounterChild] = field(default_factory=dict)
    requests: int = 0
    successes: int = 0


class GoldenMetrics:
    def __init__(self, registry: Registry) -> None:
        self.registry = r = registry
        self.route_requests = r.counter(
            "voxmesh_route_requests_total", "Client requests per route.", ["route", "deployment", "status"]
        )
        self.route_latency = r.histogram(
            "voxmesh_route_latency_seconds", "Time to first byte sent to the client.", ["route", "deployment"]
        )
        self.route_retries = r.counter(
            "voxmesh_route_retries_total", "Retries per route.", ["route", "deployment"]
        )
        self.ep_requests = r.counter(
            "voxmesh_endpoint_requests_total",
            "Attempts per endpoint by classification.",
            ["deployment", "endpoint", "classification"],
        )
        self.ep_latency = r.histogram(
            "voxmesh_endpoint_latency_seconds", "First-byte latency per attempt.", ["deployment", "endpoint"]
        )
        self.ep_in_flight = r.gauge(
            "voxmesh_endpoint_in_flight", "Requests in flight.", ["deployment", "endpoint"]
        )
        self.ep_breaker = r.gauge(
            "voxmesh_endpoint_breaker_state", "0 closed, 1 open, 2 half-open.", ["deployment", "endpoint"]
        )
        self.ep_ewma = r.gauge(
            "voxmesh_endpoint_ewma_seconds", "Peak-EWMA latency.", ["deployment", "endpoint"]
        )
        self.edge_requests = r.counter(
            "voxmesh_edge_requests_total",
            "Attempts per edge caller -> deployment -> endpoint.",
            ["caller", "deployment", "endpoint", "classification"],
        )
        self.edge_latency = r.histogram(
            "voxmesh_edge_latency_seconds",
            "First-byte latency per edge.",
            ["caller", "deployment", "endpoint"],
        )
        self.budget_exhausted = r.counter(
            "voxmesh_retry_budget_exhausted_total", "Retries refused by the retry budget.", ["deployment"]
        )
        self.shed = r.counter(
            "voxmesh_shed_total", "Requests answered 503 without an attempt.", ["deployment", "reason"]
        )
        self._routes: dict[tuple[str, str], _RouteStats] = {}
        self._edges: dict[tuple[str, str, str], EdgeStats] = {}

    # ---- recording -------------------------------------------------------------------
    def route(self, route: str, deployment: str) -> _RouteStats:
        key = (route, deployment)
        stats = self._routes.get(key)
        if stats is None:
            stats = self._routes[key] = _RouteStats(
                self.route_latency.labels(route, deployment), self.route_retries.labels(route, deployment)
            )
        return stats

    def request_done(
        self, stats: _RouteStats, route: str, deployment: str, status: str, ok: bool, ttfb: float | None
    ) -> None:
        """``status`` is the HTTP status sent, or "stream_error" when a stream broke after its head."""
        counter = stats.by_status.get(status)
        if counter is None:
            counter = stats.by_status[status] = self.route_requests.labels(route, deployment, status)
        counter.inc()
        stats.requests += 1
        stats.successes += ok
        if ttfb is not None:
            stats.latency.observe(ttfb)

    def edge(self, caller: str, deployment: str, endpoint: str) -> EdgeStats:
        key = (caller, deployment, endpoint)
        stats = self._edges.get(key)
        if stats is None:
            stats = self._edges[key] = EdgeStats(
                {o: self.edge_requests.labels(caller, deployment, endpoint, o.value) for o in Outcome},
                self.edge_latency.labels(caller, deployment, endpoint),
            )
        return stats

    def endpoint(self, deployment: str, endpoint: str) -> EndpointStats:
        return EndpointStats(
            {o: self.ep_requests.labels(deployment, endpoint, o.value) for o in Outcome},
            self.ep_latency.labels(deployment, endpoint),
            self.ep_in_flight.labels(deployment, endpoint),
        )

    def attempt_done(
        self, edge: EdgeStats, ep: EndpointStats, outcome: Outcome, latency: float | None
    ) -> None:
        for stats in (edge, ep):
            stats.by_class[outcome].inc()
            stats.requests += 1
            stats.successes += outcome is Outcome.SUCCESS
            if latency is not None:
                stats.latency.observe(latency)

    def forget_endpoint(self, deployment: str, endpoint: str) -> None:
        for gauge in (self.ep_in_flight, self.ep_breaker, self.ep_ewma):
            gauge.remove(deployment, endpoint)

    # ---- views -----------------------------------------------------------------------
    def routes_view(self) -> list[dict[str, Any]]:
        out = []
        for (route, deployment), s in sorted(self._routes.items()):
            out.append(
                {
                    "route": route,
                    "deployment": deployment,
                    **summary(s.requests, s.successes, s.latency),
                    "retries": int(s.retries.value),
                }
            )
        return out

    def edges_view(self) -> list[dict[str, Any]]:
        return [
            {"caller": c, "deployment": d, "endpoint": e, **summary(s.requests, s.successes, s.latency)}
            for (c, d, e), s in sorted(self._edges.items())
        ]

    def deployment_totals(self, deployment: str) -> tuple[int, int, HistogramChild]:
        """Client requests, successes and a merged latency histogram of one deployment (all routes)."""
        merged = HistogramChild()
        requests = successes = 0
        for (_, d), s in self._routes.items():
            if d != deployment:
                continue
            requests += s.requests
            successes += s.successes
            for i, n in enumerate(s.latency.counts):
                merged.counts[i] += n
            merged.count += s.latency.count
            merged.sum += s.latency.sum
            merged.min = min(merged.min, s.latency.min)
            merged.max = max(merged.max, s.latency.max)
        return requests, successes, merged
