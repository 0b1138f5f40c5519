"""The autoscaler loop of ``voxmesh up``: scrape workers, build a snapshot, run the pure policy.

Every ``scaling.sync_period_s`` per deployment: read each serving worker's ``/metrics``
(in-flight, queue length, requests), the CPU of its process (psutil), turn them into a
:class:`~voxmesh.autoscale.Snapshot`, call :func:`~voxmesh.autoscale.decide` (the same code
the simulator runs) and hand a changed count to the supervisor. Every decision that changes
something is logged with its reason and inputs, and all of them show on ``/metrics``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import psutil

from voxmesh.autoscale import (
    Metric,
    MetricKind,
    MetricSample,
    PolicyState,
    Snapshot,
    decide,
    spec_from_deployment,
)
from voxmesh.deployments import Deployment

__all__ = ["AutoscaleLoop"]

log = logging.getLogger(__name__)


class _Rate:
    """Requests per second from a monotonically increasing counter."""

    def __init__(self) -> None:
        self.last: tuple[float, float] | None = None

    def update(self, now: float, total: float) -> float:
        prev, self.last = self.last, (now, total)
        if prev is None or now <= prev[0] or total < prev[1]:
            return 0.0
        return (total - prev[1]) / (now - prev[0])


def _missing(serving: int, scraped: int, cpu_read: int) -> tuple[Metric, ...]:
    """Metrics that could not be read from every serving replica this tick."""
    out: list[Metric] = []
    if scraped < serving:
        out += [Metric.IN_FLIGHT, Metric.QPS, Metric.QUEUE_LENGTH]
    if cpu_read < serving:
        out.append(Metric.CPU_UTILIZATION)
    return tuple(out)


class AutoscaleLoop:
    def __init__(self, supervisor: Any, deployments: list[Deployment], *,
                 clock: Callable[[], float] = time.monotonic, held: dict[str, int] | None = None) -> None:
        self.supervisor = supervisor
        self.held = held if held is not None else {}  # requests the gateway holds at zero replicas
        self.deployments = deployments
        self.clock = clock
        self.specs = {d.name: spec_from_deployment(d) for d in deployments}
        self.states = {d.name: PolicyState() for d in deployments}
        self.rates = {d.name: _Rate() for d in deployments}
        self.last: dict[str, Any] = {}
        self.decisions_total: dict[tuple[str, str], int] = {}
        self._cpu: dict[int, psutil.Process] = {}

    async def run(self) -> None:
        period = min(d.scaling.sync_period_s for d in self.deployments) if self.deployments else 1.0
        while True:
            await asyncio.sleep(period)
            for dep in self.deployments:
                try:
                    await self.tick(dep)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("autoscaler tick for %s failed", dep.name)

    async def tick(self, dep: Deployment) -> None:
        name = dep.name
        serving = self.supervisor.serving(name)
        if not serving and not self.specs[name].scale_to_zero:
            return  # nothing routed yet: the supervisor is still bringing up the minimum
        scraped = await self.supervisor.scrape_all(name)
        now = self.clock()
        in_flight = sum(m.get("voxmesh_worker_in_flight", 0) + m.get("voxmesh_worker_queue_length", 0) for m in scraped)
        in_flight += self.held.get(name, 0)
        queue = sum(m.get("voxmesh_worker_queue_length", 0) for m in scraped)
        requests = sum(m.get("voxmesh_worker_requests_total", 0) for m in scraped)
        qps = self.rates[name].update(now, requests)
        cpu, cpu_read = self._cpu_utilization(serving, dep.threads_per_replica())
        # The HPA's spec.replicas: the count the supervisor converges to, of which the
        # serving ones are ready; the rest are still booting (counted at zero usage).
        current = max(len(serving), int(getattr(self.supervisor, "desired", {}).get(name, len(serving))))
        snap = Snapshot(
            now=now, deployment=name,
            current_replicas=current, ready_replicas=len(serving),
            missing_metrics=_missing(len(serving), len(scraped), cpu_read),
            warm_replicas=len(self.supervisor.warm(name)),
            metrics=(
                MetricSample(Metric.IN_FLIGHT, in_flight, MetricKind.TOTAL),
                MetricSample(Metric.QPS, qps, MetricKind.TOTAL),
                MetricSample(Metric.CPU_UTILIZATION, cpu, MetricKind.AVERAGE),
                MetricSample(Metric.QUEUE_LENGTH, queue, MetricKind.TOTAL),
            ),
        )
        decision, self.states[name] = decide(snap, self.specs[name], self.states[name])
        self.last[name] = decision
        key = (name, decision.reason.value)
        self.decisions_total[key] = self.decisions_total.get(key, 0) + 1
        if decision.desired_replicas != current:
            log.info("autoscale %s: %d -> %d (%s) in_flight=%.0f qps=%.1f cpu=%.2f queue=%.0f", name,
                     current, decision.desired_replicas, decision.message, in_flight, qps, cpu, queue)
            self.supervisor.scale(name, decision.desired_replicas, reason=decision.message)

    def _cpu_utilization(self, replicas: list[Any], cores: int) -> tuple[float, int]:
        """Average busy fraction of the replicas' cores, and how many replicas were read
        (a new process is only primed on its first tick)."""
        values = []
        for rep in replicas:
            pid = rep.proc.pid if rep.proc is not None else None
            if pid is None:
                continue
            proc = self._cpu.get(pid)
            try:
                if proc is None:
                    proc = self._cpu[pid] = psutil.Process(pid)
                    proc.cpu_percent(None)  # first call primes the counter
                    continue
                values.append(proc.cpu_percent(None) / 100.0 / max(1, cores))
            except psutil.Error:
                self._cpu.pop(pid, None)
        return (sum(values) / len(values) if values else 0.0), len(values)

    def metrics_text(self) -> str:
        lines = [
            "# HELP voxmesh_autoscaler_desired_replicas replicas the policy wants",
            "# TYPE voxmesh_autoscaler_desired_replicas gauge",
        ]
        for name, d in sorted(self.last.items()):
            lines.append(f'voxmesh_autoscaler_desired_replicas{{deployment="{name}"}} {d.desired_replicas}')
        lines += ["# HELP voxmesh_autoscaler_decisions_total policy decisions by reason",
                  "# TYPE voxmesh_autoscaler_decisions_total counter"]
        for (name, reason), n in sorted(self.decisions_total.items()):
            lines.append(f'voxmesh_autoscaler_decisions_total{{deployment="{name}",reason="{reason}"}} {n}')
        lines += ["# HELP voxmesh_autoscaler_metric_value inputs of the last decision",
                  "# TYPE voxmesh_autoscaler_metric_value gauge"]
        for name, d in sorted(self.last.items()):
            for p in d.proposals:
                lines.append(f'voxmesh_autoscaler_metric_value{{deployment="{name}",metric="{p.metric.value}"}} {p.value}')
        return "\n".join(lines)
