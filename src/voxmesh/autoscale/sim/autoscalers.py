"""The autoscalers the simulator compares, as data: a :class:`ScalingSpec` for the shared
policy code, a sync period, and how their metric reaches them.

Metric pipelines are modelled as the stages they have in a real cluster (all on the
simulator's 1 s sample grid):

- ``scrape_s``: the collector samples every ``scrape_s`` (metrics-server resolution,
  Prometheus scrape interval, voxmesh's 1 s push);
- ``window_s``: the value is an average over the window ending at that scrape
  (kubelet CPU rate, PromQL ``rate(...[1m])``, voxmesh's 5 s in-flight average);
- ``poll_s``: a cache refreshed every ``poll_s`` in between (KEDA's ``pollingInterval``);
- ``delay_s``: a fixed transport delay before the sample can be read.

Presets (``scale`` multiplies the per-deployment bounds):

- :func:`voxmesh` - in-flight per replica, target 0.7 (70 % of a 1-request replica, counting
  queued requests), 1 s sync, a warm pool, unlimited scale-up, 30 s scale-down window.
- :func:`hpa_cpu` - the Kubernetes HPA at defaults: CPU 70 %, 15 s sync, metrics-server
  15 s resolution, default behavior (300 s scale-down window); cold starts only.
- :func:`keda_qps` - KEDA's Prometheus scaler at defaults: QPS per replica (the same 70 %
  of capacity), Prometheus scrape 15 s, ``rate[1m]``, pollingInterval 30 s, driving an HPA
  with default behavior and 15 s sync; cold starts only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from voxmesh.autoscale.snapshot import (
    HPA_DEFAULT_SCALE_DOWN,
    Behavior,
    Metric,
    MetricKind,
    ScalingRules,
    ScalingSpec,
)

__all__ = ["AutoscalerConfig", "MetricSource", "hpa_cpu", "keda_qps", "presets", "voxmesh"]

TARGET_UTILIZATION = 0.7


@dataclass(frozen=True)
class MetricSource:
    metric: Metric
    kind: MetricKind
    scrape_s: int = 1
    window_s: int = 1
    poll_s: int | None = None
    delay_s: int = 0
    offset_s: int = 0  # phase of the scrape grid (collectors are not aligned with t = 0)

    def observed_second(self, now: float) -> int:
        """The sample second whose window the autoscaler sees at ``now``."""
        t = now
        if self.poll_s:
            t = math.floor((t - self.offset_s) / self.poll_s) * self.poll_s + self.offset_s
        t -= self.delay_s
        return int(math.floor((t - self.offset_s) / self.scrape_s) * self.scrape_s + self.offset_s)


@dataclass(frozen=True)
class AutoscalerConfig:
    name: str
    spec: ScalingSpec
    source: MetricSource
    sync_s: float
    sync_offset_s: float = 0.0
    promotion_s: float = 1.0  # warm -> routable (a discovery Add)


def _bounds(scale: float) -> tuple[int, int]:
    return max(1, round(scale)), max(2, round(25 * scale))


def voxmesh(scale: float = 1.0, warm_per_unit: float = 0.3, mean_service_s: float = 0.39) -> AutoscalerConfig:
    low, high = _bounds(scale)
    del mean_service_s  # in-flight needs no service-time estimate: that is its point
    spec = ScalingSpec(
        min_replicas=low,
        max_replicas=high,
        warm_pool_size=max(1, round(warm_per_unit * scale)),
        target_in_flight_per_replica=TARGET_UTILIZATION,
        behavior=Behavior(
            scale_up=ScalingRules(stabilization_window_s=0.0),
            scale_down=ScalingRules(stabilization_window_s=30.0, policies=HPA_DEFAULT_SCALE_DOWN.policies),
        ),
    )
    source = MetricSource(Metric.IN_FLIGHT, MetricKind.TOTAL, scrape_s=1, window_s=5, delay_s=1)
    return AutoscalerConfig("voxmesh", spec, source, sync_s=1.0)


def hpa_cpu(scale: float = 1.0, mean_service_s: float = 0.39) -> AutoscalerConfig:
    low, high = _bounds(scale)
    del mean_service_s
    spec = ScalingSpec(min_replicas=low, max_replicas=high, target_cpu_utilization=TARGET_UTILIZATION)
    source = MetricSource(Metric.CPU_UTILIZATION, MetricKind.AVERAGE, scrape_s=15, window_s=15, offset_s=7)
    return AutoscalerConfig("hpa-cpu", spec, source, sync_s=15.0, sync_offset_s=3.0)


def keda_qps(scale: float = 1.0, mean_service_s: float = 0.39) -> AutoscalerConfig:
    low, high = _bounds(scale)
    spec = ScalingSpec(
        min_replicas=low, max_replicas=high, target_qps_per_replica=TARGET_UTILIZATION / mean_service_s
    )
    source = MetricSource(Metric.QPS, MetricKind.TOTAL, scrape_s=15, window_s=60, poll_s=30, offset_s=5)
    return AutoscalerConfig("keda-qps", spec, source, sync_s=15.0, sync_offset_s=3.0)


def presets(scale: float = 1.0, mean_service_s: float = 0.39) -> list[AutoscalerConfig]:
    return [voxmesh(scale, mean_service_s=mean_service_s), hpa_cpu(scale, mean_service_s),
            keda_qps(scale, mean_service_s)]
