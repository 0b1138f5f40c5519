"""Cluster-scale autoscaling simulator: the same :func:`~voxmesh.autoscale.policy.decide` the
controller runs, driven by a seeded trace, compared across autoscalers.

    >>> cmp = compare("spike", scale=1, seed=1)       # doctest: +SKIP
    >>> print(format_table(cmp.summaries))            # doctest: +SKIP

Every autoscaler sees the same arrivals and the same service time per request (drawn
once from the seed), so differences come from the policies and their metric pipelines
only. See :mod:`voxmesh.autoscale.sim.engine` for the model and its limits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voxmesh.autoscale.sim.autoscalers import TARGET_UTILIZATION, AutoscalerConfig, presets
from voxmesh.autoscale.sim.engine import ClusterConfig, SimResult, initial_replicas, run
from voxmesh.autoscale.sim.report import Summary, format_table, plot, summarize
from voxmesh.autoscale.sim.service import ServiceTimes, piper_default
from voxmesh.autoscale.sim.trace import Scenario, arrivals, make_scenario

__all__ = ["ClusterConfig", "Comparison", "compare", "format_table", "needed_replicas", "simulate"]


@dataclass
class Comparison:
    scenario: Scenario
    results: list[SimResult]
    summaries: list[Summary]
    cluster: ClusterConfig
    seed: int
    mean_service_s: float
    autoscalers: list[AutoscalerConfig]

    def table(self, markdown: bool = True) -> str:
        return format_table(self.summaries, markdown=markdown)

    def plot(self, out_dir: Path) -> list[Path]:
        return plot(self.results, out_dir, self.scenario.name, self.cluster.slo_s,
                    needed=needed_replicas(self.scenario, self.mean_service_s, self.cluster),
                    timeout_s=self.cluster.request_timeout_s, spike=self.scenario.spike)


def needed_replicas(scenario: Scenario, mean_service_s: float, cluster: ClusterConfig) -> np.ndarray:
    """Replicas the offered load needs at the target utilization, per second."""
    t = np.arange(int(scenario.duration_s) + 1, dtype=float)
    return np.asarray(scenario.rate(t) * mean_service_s / (TARGET_UTILIZATION * cluster.concurrency))


def simulate(
    scenario: Scenario, autoscaler: AutoscalerConfig, *, seed: int = 0,
    cluster: ClusterConfig | None = None, service: ServiceTimes | None = None,
) -> SimResult:
    """One autoscaler over one scenario."""
    cluster = cluster or ClusterConfig()
    service = service or piper_default()
    rng = np.random.default_rng(seed)
    times = arrivals(scenario, rng)
    work = service.sample(times.size, rng)
    start = initial_replicas(float(scenario.rate(np.array([0.0]))[0]), service.mean_s, TARGET_UTILIZATION,
                             cluster.concurrency)
    return run(times, work, autoscaler, cluster, duration_s=scenario.duration_s, scenario=scenario.name,
               initial_replicas=start, seed=seed)


def compare(
    scenario: str | Scenario, scale: float = 1.0, seed: int = 0, *,
    cluster: ClusterConfig | None = None, service: ServiceTimes | None = None,
    autoscalers: list[AutoscalerConfig] | None = None,
) -> Comparison:
    """voxmesh vs HPA on CPU vs KEDA on QPS (or ``autoscalers``) on one seeded trace."""
    sc = make_scenario(scenario, scale) if isinstance(scenario, str) else scenario
    cluster = cluster or ClusterConfig()
    service = service or piper_default()
    configs = autoscalers or presets(sc.scale, mean_service_s=service.mean_s)
    results = [simulate(sc, a, seed=seed, cluster=cluster, service=service) for a in configs]
    summaries = [summarize(r, cluster.slo_s, sc.spike) for r in results]
    return Comparison(sc, results, summaries, cluster, seed, service.mean_s, configs)
