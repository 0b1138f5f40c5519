"""Frozen inputs and state of the scaling policy.

A :class:`Snapshot` is what the controller (or the simulator) observed at ``now``; a
:class:`ScalingSpec` is what the operator declared; a :class:`PolicyState` is what the policy
remembers between decisions (recommendation history for stabilization windows, scale events
for rate policies, the last decision). All three are frozen: :func:`voxmesh.autoscale.policy.decide`
returns a new state instead of changing the one it was given.

Metric kinds follow the HPA's metric target types:

- ``TOTAL``: a sum over the deployment (in-flight requests, QPS, queue length). The desired
  count is ``ceil(total / target_per_replica)``, which does not depend on how many replicas
  are ready yet (a replica still loading does not distort the average).
- ``AVERAGE``: already an average per ready replica (CPU utilization in 0..1, like the HPA's
  ``Utilization`` target). The desired count is ``ceil(ready * value / target)``; with no
  ready replica there is no estimate.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from voxmesh.deployments import Deployment

__all__ = [
    "HPA_DEFAULT_SCALE_DOWN",
    "HPA_DEFAULT_SCALE_UP",
    "Behavior",
    "Metric",
    "MetricKind",
    "MetricSample",
    "PolicyState",
    "PolicyType",
    "RatePolicy",
    "Recommendation",
    "ScaleEvent",
    "ScalingRules",
    "ScalingSpec",
    "SelectPolicy",
    "Snapshot",
    "spec_from_deployment",
]


class Metric(enum.Enum):
    """The metrics a policy can scale on; values are the metric label names."""

    IN_FLIGHT = "in_flight"  # requests accepted and not yet answered (queued + running)
    QPS = "qps"  # arrivals per second over the collector's window
    CPU_UTILIZATION = "cpu_utilization"  # busy fraction of the requested cores, 0..1
    QUEUE_LENGTH = "queue_length"  # requests waiting (job queue or worker queue)


class MetricKind(enum.Enum):
    TOTAL = "total"
    AVERAGE = "average"


@dataclass(frozen=True, slots=True)
class MetricSample:
    name: Metric
    value: float
    kind: MetricKind = MetricKind.TOTAL


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One observation of a deployment.

    ``current_replicas`` is the replica count the controller is converging to (the HPA's
    ``spec.replicas``: serving plus those starting to serve); ``ready_replicas`` the routable
    ones; ``warm_replicas`` the loaded but unrouted ones. ``current - ready`` replicas are
    not ready (the HPA's unready pods). ``missing_metrics`` names the metrics that could not
    be read this time (a replica's scrape failed, no CPU reading yet): the HPA's invalid
    metrics, which block a scale-down. A metric absent from ``metrics`` and not listed there
    simply was not provided.
    """

    now: float
    deployment: str
    current_replicas: int
    ready_replicas: int
    warm_replicas: int = 0
    metrics: tuple[MetricSample, ...] = ()
    missing_metrics: tuple[Metric, ...] = ()

    def get(self, name: Metric) -> MetricSample | None:
        for sample in self.metrics:
            if sample.name is name:
                return sample
        return None


class PolicyType(enum.Enum):
    PODS = "Pods"
    PERCENT = "Percent"


class SelectPolicy(enum.Enum):
    MAX = "Max"  # the policy allowing the largest change wins (HPA default)
    MIN = "Min"  # the policy allowing the smallest change wins
    DISABLED = "Disabled"  # no scaling in this direction


@dataclass(frozen=True, slots=True)
class RatePolicy:
    """HPA ``HPAScalingPolicy``: at most ``value`` pods (or percent) per ``period_s``."""

    type: PolicyType
    value: int
    period_s: float

    def __post_init__(self) -> None:
        if self.value <= 0 or self.period_s <= 0:
            raise ValueError("rate policy value and period must be positive")


@dataclass(frozen=True, slots=True)
class ScalingRules:
    """HPA ``HPAScalingRules`` for one direction.

    ``policies=()`` means no rate limit in this direction (with ``select`` other than DISABLED).
    """

    stabilization_window_s: float
    policies: tuple[RatePolicy, ...] = ()
    select: SelectPolicy = SelectPolicy.MAX


# Kubernetes defaults (autoscaling/v2): up = max(100 % or 4 pods per 15 s), no window;
# down = 100 % per 15 s after a 300 s window.
HPA_DEFAULT_SCALE_UP = ScalingRules(
    stabilization_window_s=0.0,
    policies=(RatePolicy(PolicyType.PERCENT, 100, 15.0), RatePolicy(PolicyType.PODS, 4, 15.0)),
)
HPA_DEFAULT_SCALE_DOWN = ScalingRules(
    stabilization_window_s=300.0, policies=(RatePolicy(PolicyType.PERCENT, 100, 15.0),)
)


@dataclass(frozen=True, slots=True)
class Behavior:
    scale_up: ScalingRules = HPA_DEFAULT_SCALE_UP
    scale_down: ScalingRules = HPA_DEFAULT_SCALE_DOWN

    def longest_period_s(self) -> float:
        periods = [p.period_s for p in (*self.scale_up.policies, *self.scale_down.policies)]
        return max(periods, default=0.0)


@dataclass(frozen=True, slots=True)
class ScalingSpec:
    """What the operator declared for one deployment.

    Each ``target_*`` left ``None`` disables that metric; with several set, the highest
    desired count wins. ``target_cpu_utilization`` defaults to the HPA's customary 0.7 only
    when no other target is given.
    """

    min_replicas: int = 1
    max_replicas: int = 10
    warm_pool_size: int = 0
    target_in_flight_per_replica: float | None = None
    target_qps_per_replica: float | None = None
    target_cpu_utilization: float | None = None
    target_queue_per_replica: float | None = None
    tolerance: float = 0.1
    behavior: Behavior = field(default_factory=Behavior)
    scale_to_zero: bool = False
    activation_metric: Metric = Metric.IN_FLIGHT
    activation_threshold: float = 0.0
    scale_to_zero_cooldown_s: float = 300.0  # KEDA cooldownPeriod

    def __post_init__(self) -> None:
        if self.min_replicas < 0 or self.max_replicas < 1 or self.min_replicas > self.max_replicas:
            raise ValueError(
                f"need 0 <= min_replicas <= max_replicas and max_replicas >= 1, "
                f"got min={self.min_replicas} max={self.max_replicas}"
            )
        if self.min_replicas == 0 and not self.scale_to_zero:
            raise ValueError("min_replicas=0 needs scale_to_zero=True (with an activation threshold)")
        if self.warm_pool_size < 0 or self.tolerance < 0:
            raise ValueError("warm_pool_size and tolerance must be >= 0")
        for name, value in self.targets().items():
            if value <= 0:
                raise ValueError(f"target for {name.value} must be > 0, got {value}")

    def targets(self) -> dict[Metric, float]:
        """Enabled targets per metric (CPU 0.7 when none is set)."""
        out: dict[Metric, float] = {}
        if self.target_in_flight_per_replica is not None:
            out[Metric.IN_FLIGHT] = self.target_in_flight_per_replica
        if self.target_qps_per_replica is not None:
            out[Metric.QPS] = self.target_qps_per_replica
        if self.target_cpu_utilization is not None:
            out[Metric.CPU_UTILIZATION] = self.target_cpu_utilization
        if self.target_queue_per_replica is not None:
            out[Metric.QUEUE_LENGTH] = self.target_queue_per_replica
        if not out:
            out[Metric.CPU_UTILIZATION] = 0.7
        return out

    @property
    def floor(self) -> int:
        """Lowest count while serving: 1 when scale-to-zero handles the 0 itself."""
        return max(self.min_replicas, 1) if self.scale_to_zero else self.min_replicas


@dataclass(frozen=True, slots=True)
class Recommendation:
    at: float
    replicas: int


@dataclass(frozen=True, slots=True)
class ScaleEvent:
    """A change of the target count (``change`` > 0 up, < 0 down), for rate policies."""

    at: float
    change: int


@dataclass(frozen=True, slots=True)
class PolicyState:
    recommendations: tuple[Recommendation, ...] = ()
    scale_events: tuple[ScaleEvent, ...] = ()
    last_active_at: float | None = None  # last time the activation metric was above threshold
    last_decision: object | None = None  # a policy.Decision (typed loosely to avoid a cycle)
    # False until the first decision: a (re)started controller seeds its recommendation
    # history with the current count, as the HPA does (horizontal.go).
    started: bool = False


def spec_from_deployment(dep: Deployment) -> ScalingSpec:
    """The policy spec for a declared deployment (its ``replicas`` and ``scaling`` blocks).

    The declared windows replace the HPA defaults; rate policies stay unlimited for scale-up
    (warm promotion is cheap) and 100 % per 15 s for scale-down, as in the HPA.
    """
    s = dep.scaling
    behavior = Behavior(
        scale_up=ScalingRules(stabilization_window_s=s.scale_up_window_s),
        scale_down=ScalingRules(
            stabilization_window_s=s.scale_down_window_s, policies=HPA_DEFAULT_SCALE_DOWN.policies
        ),
    )
    any_target = any(
        v is not None for v in (s.in_flight_per_replica, s.qps_per_replica, s.cpu_utilization, s.queue_per_replica)
    )
    return ScalingSpec(
        min_replicas=dep.replicas.min,
        max_replicas=dep.replicas.max,
        warm_pool_size=dep.replicas.warm,
        target_in_flight_per_replica=s.in_flight_per_replica if any_target else 1.0,
        target_qps_per_replica=s.qps_per_replica,
        target_cpu_utilization=s.cpu_utilization,
        target_queue_per_replica=s.queue_per_replica,
        behavior=behavior,
        scale_to_zero=s.scale_to_zero or dep.replicas.min == 0,
        activation_threshold=s.activation_threshold,
        scale_to_zero_cooldown_s=s.zero_after_s,
    )
