"""The small, named, pure steps a scaling decision is built from.

Order, as in the Kubernetes HPA (``normalizeDesiredReplicasWithBehaviors``):

1. :func:`propose` - one desired count per metric, the HPA rule
   ``desired = ceil(current * ratio)`` with ``ratio = per-replica usage / target``; a ratio
   within ``1 +- tolerance`` keeps ``current`` (no flapping on noise).
2. :func:`apply_max_over_metrics` - the highest proposal wins (scale for the busiest signal).
3. :func:`apply_stabilization` - the raw proposals of the last window bound the result:
   at most the minimum over the scale-up window, at least the maximum over the scale-down
   window (HPA defaults: 0 s up, 300 s down).
4. :func:`apply_rate_policies` - HPA ``behavior`` policies: Pods/Percent per ``period_s``,
   ``select`` Max/Min/Disabled, counted from the scale events inside each period.
5. :func:`apply_bounds` - ``[min, max]``; bounds win over everything above.
6. :func:`apply_scale_to_zero` - KEDA-style activation: 0 -> 1 when the activation metric
   exceeds the threshold; back to 0 after ``cooldown`` without activity.

Three HPA rules around these steps (``horizontal.go``, ``replica_calculator.go``):

- unready replicas: an AVERAGE metric asking for a scale-up is recomputed with the replicas
  that are not ready at zero usage; if that lands within tolerance or flips the direction,
  the metric keeps ``current`` (:func:`desired_for_average`);
- a (re)started controller's first decision counts ``current`` as a recommendation made
  now, so a scale-down waits out a whole window (:func:`seed_recommendations`);
- while a configured metric cannot be read, no scale-down (:func:`missing_configured`,
  :func:`blocks_scale_down`).

Limits: a replica whose scrape failed is not modelled per pod (the HPA assumes 100 % of
target for it on scale-down); the whole scale-down is blocked instead, as the HPA does for
an invalid metric.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from voxmesh.autoscale.snapshot import (
    Behavior,
    Metric,
    MetricKind,
    MetricSample,
    PolicyType,
    Recommendation,
    ScaleEvent,
    ScalingRules,
    ScalingSpec,
    SelectPolicy,
    Snapshot,
)

__all__ = [
    "MetricProposal",
    "ZeroOutcome",
    "apply_bounds",
    "apply_max_over_metrics",
    "apply_rate_policies",
    "apply_scale_to_zero",
    "apply_stabilization",
    "blocks_scale_down",
    "ceil_replicas",
    "desired_for_average",
    "desired_for_metric",
    "missing_configured",
    "propose",
    "record_recommendation",
    "record_scale_event",
    "scale_down_limit",
    "scale_up_limit",
    "seed_recommendations",
]

_EPS = 1e-9  # keeps ceil(2.0000000001) at 2: metric arithmetic is float


def ceil_replicas(x: float) -> int:
    return max(0, math.ceil(x - _EPS))


@dataclass(frozen=True, slots=True)
class MetricProposal:
    """One metric's input and the count it asks for (``None``: no estimate possible)."""

    metric: Metric
    value: float
    target: float
    ratio: float | None
    desired: int | None
    within_tolerance: bool = False
    held_by_unready: bool = False  # a scale-up undone by counting unready replicas at zero


def desired_for_average(
    sample: MetricSample, target: float, current: int, ready: int, tolerance: float
) -> MetricProposal:
    """HPA ``GetResourceReplicas`` for a utilization averaged over the ready replicas.

    ``usage = value / target`` over the ready ones; within tolerance keeps ``current``.
    A scale-down (or no unready replica) asks ``ceil(usage * ready)``. A scale-up with
    ``current - ready`` replicas not ready is recomputed with those at zero usage:
    ``ready * value / (current * target)``; if that is within tolerance or below 1 (the
    direction flips), the metric keeps ``current``, otherwise it asks ``ceil(ready * value
    / target)``.
    """
    if ready <= 0:
        return MetricProposal(sample.name, sample.value, target, None, None)
    usage = sample.value / target
    if abs(usage - 1.0) <= tolerance + _EPS:
        return MetricProposal(sample.name, sample.value, target, usage, current, within_tolerance=True)
    unready = max(current - ready, 0)
    if unready == 0 or usage < 1.0:
        return MetricProposal(sample.name, sample.value, target, usage, ceil_replicas(usage * ready))
    recomputed = ready * sample.value / (current * target)
    if abs(recomputed - 1.0) <= tolerance + _EPS:
        return MetricProposal(sample.name, sample.value, target, recomputed, current, within_tolerance=True)
    if recomputed < 1.0:  # the direction flips: no scaling
        return MetricProposal(sample.name, sample.value, target, recomputed, current, held_by_unready=True)
    return MetricProposal(sample.name, sample.value, target, recomputed, ceil_replicas(recomputed * current))


def desired_for_metric(
    sample: MetricSample, target: float, current: int, ready: int, tolerance: float
) -> MetricProposal:
    """The HPA rule for one metric.

    A TOTAL metric (in-flight, QPS, queue) is the HPA's external metric with an
    ``AverageValue`` target: ``ratio = total / (current * target)``, ``desired =
    ceil(total / target)``, readiness plays no part. An AVERAGE one follows
    :func:`desired_for_average`.
    """
    if sample.kind is MetricKind.AVERAGE:
        return desired_for_average(sample, target, current, ready, tolerance)
    load = sample.value
    if current <= 0:
        return MetricProposal(sample.name, sample.value, target, None, ceil_replicas(load / target))
    ratio = load / (current * target)
    if abs(ratio - 1.0) <= tolerance + _EPS:
        return MetricProposal(sample.name, sample.value, target, ratio, current, within_tolerance=True)
    return MetricProposal(sample.name, sample.value, target, ratio, ceil_replicas(load / target))


def propose(snapshot: Snapshot, spec: ScalingSpec) -> tuple[MetricProposal, ...]:
    """A proposal for each metric that has both a target and a sample."""
    out = []
    for metric, target in spec.targets().items():
        sample = snapshot.get(metric)
        if sample is None:
            continue
        out.append(
            desired_for_metric(sample, target, snapshot.current_replicas, snapshot.ready_replicas, spec.tolerance)
        )
    return tuple(out)


def missing_configured(snapshot: Snapshot, spec: ScalingSpec) -> tuple[Metric, ...]:
    """The configured metrics the snapshot says could not be read."""
    targets = spec.targets()
    return tuple(m for m in snapshot.missing_metrics if m in targets)


def blocks_scale_down(missing: tuple[Metric, ...], raw: int, current: int, any_estimate: bool) -> bool:
    """HPA ``computeReplicasForMetrics``: with an invalid metric, a scale-down (or, with no
    valid metric at all, any change) is refused and the controller keeps ``current``."""
    if not missing or current <= 0:
        return False
    return raw < current or not any_estimate


def apply_max_over_metrics(proposals: tuple[MetricProposal, ...], current: int) -> tuple[int, Metric | None]:
    """Highest desired count and the metric that asked for it; ``current`` with no estimate."""
    best: tuple[int, Metric | None] = (current, None)
    found = False
    for p in proposals:
        if p.desired is None:
            continue
        if not found or p.desired > best[0]:
            best = (p.desired, p.metric)
            found = True
    return best


def apply_stabilization(
    desired: int, current: int, now: float, recommendations: tuple[Recommendation, ...], behavior: Behavior
) -> int:
    """HPA ``stabilizeRecommendationWithBehaviors``.

    ``up`` = min of the proposals (including this one) newer than ``now - up_window``;
    ``down`` = max of those newer than ``now - down_window``. The result starts at
    ``current``, rises to ``up`` and falls to ``down``: a scale-up needs every recent
    proposal to agree, a scale-down takes the highest recent one.
    """
    up_cutoff = now - behavior.scale_up.stabilization_window_s
    down_cutoff = now - behavior.scale_down.stabilization_window_s
    up = desired
    down = desired
    for rec in recommendations:
        if rec.at > up_cutoff:
            up = min(up, rec.replicas)
        if rec.at > down_cutoff:
            down = max(down, rec.replicas)
    result = current
    if result < up:
        result = up
    if result > down:
        result = down
    return result


def _changes_in_period(events: tuple[ScaleEvent, ...], now: float, period_s: float) -> tuple[int, int]:
    added = removed = 0
    cutoff = now - period_s
    for ev in events:
        if ev.at > cutoff:
            if ev.change > 0:
                added += ev.change
            else:
                removed -= ev.change
    return added, removed


def scale_up_limit(current: int, now: float, events: tuple[ScaleEvent, ...], rules: ScalingRules) -> int | None:
    """HPA ``calculateScaleUpLimitWithScalingRules``; ``None`` means unlimited.

    Each policy allows ``period_start + value`` pods (or ``ceil(period_start * (1 + pct))``)
    where ``period_start`` is the count at the start of its period; Max picks the largest
    allowance, Min the smallest, Disabled freezes at ``current``.
    """
    if rules.select is SelectPolicy.DISABLED:
        return current
    if not rules.policies:
        return None
    limits = []
    for policy in rules.policies:
        added, removed = _changes_in_period(events, now, policy.period_s)
        start = current - added + removed
        if policy.type is PolicyType.PODS:
            limits.append(start + policy.value)
        else:
            limits.append(math.ceil(start * (1 + policy.value / 100) - _EPS))
    return max(limits) if rules.select is SelectPolicy.MAX else min(limits)


def scale_down_limit(current: int, now: float, events: tuple[ScaleEvent, ...], rules: ScalingRules) -> int | None:
    """HPA ``calculateScaleDownLimitWithBehaviors``; ``None`` means unlimited.

    Each policy allows going down to ``period_start - value`` (or ``int(period_start *
    (1 - pct))``, truncated as the HPA does); Max picks the lowest floor (largest change),
    Min the highest.
    """
    if rules.select is SelectPolicy.DISABLED:
        return current
    if not rules.policies:
        return None
    limits = []
    for policy in rules.policies:
        added, removed = _changes_in_period(events, now, policy.period_s)
        start = current - added + removed
        if policy.type is PolicyType.PODS:
            limits.append(start - policy.value)
        else:
            limits.append(int(start * (1 - policy.value / 100) + _EPS))
    return min(limits) if rules.select is SelectPolicy.MAX else max(limits)


def apply_rate_policies(
    desired: int, current: int, now: float, events: tuple[ScaleEvent, ...], behavior: Behavior
) -> int:
    """Clamp the change from ``current`` to what the direction's policies allow now.

    As in the HPA, an exhausted budget never reverses direction: a scale-up limit below
    ``current`` holds at ``current`` (and likewise for scale-down).
    """
    if desired > current:
        limit = scale_up_limit(current, now, events, behavior.scale_up)
        if limit is None:
            return desired
        return min(desired, max(limit, current))
    if desired < current:
        limit = scale_down_limit(current, now, events, behavior.scale_down)
        if limit is None:
            return desired
        return max(desired, min(limit, current))
    return desired


def apply_bounds(desired: int, low: int, high: int) -> int:
    return max(low, min(high, desired))


class ZeroOutcome(enum.Enum):
    NONE = "none"  # scale-to-zero off, or serving and active: the pipeline's count stands
    ACTIVATE = "activate"  # 0 -> 1: the activation metric crossed the threshold
    STAY_AT_ZERO = "stay_at_zero"  # at 0 and idle
    TO_ZERO = "to_zero"  # idle for the cooldown: back to 0


def apply_scale_to_zero(
    desired: int, snapshot: Snapshot, spec: ScalingSpec, last_active_at: float | None
) -> tuple[int, ZeroOutcome, float | None]:
    """KEDA activation semantics; returns (count, outcome, new last_active_at).

    Active means the activation metric is above ``activation_threshold``. At 0 replicas an
    active deployment goes to 1 (KEDA's 0 -> 1; the metric rules take over from there); an
    idle one at >= 1 replica goes to 0 once it has been idle for ``scale_to_zero_cooldown_s``.
    """
    if not spec.scale_to_zero:
        return desired, ZeroOutcome.NONE, last_active_at
    sample = snapshot.get(spec.activation_metric)
    active = sample is not None and sample.value > spec.activation_threshold
    if active:
        last_active_at = snapshot.now
    if snapshot.current_replicas == 0 and spec.min_replicas == 0:
        if active:
            return 1, ZeroOutcome.ACTIVATE, last_active_at
        return 0, ZeroOutcome.STAY_AT_ZERO, last_active_at
    if spec.min_replicas == 0 and not active:
        idle_since = last_active_at if last_active_at is not None else snapshot.now
        if last_active_at is None:
            last_active_at = snapshot.now  # first observation starts the cooldown clock
        if snapshot.now - idle_since >= spec.scale_to_zero_cooldown_s:
            return 0, ZeroOutcome.TO_ZERO, last_active_at
    return desired, ZeroOutcome.NONE, last_active_at


def seed_recommendations(
    recommendations: tuple[Recommendation, ...], now: float, current: int, started: bool
) -> tuple[Recommendation, ...]:
    """HPA: a controller without history for this target starts it with ``current`` at
    ``now``, so the first scale-down waits out the whole window."""
    if started:
        return recommendations
    return (*recommendations, Recommendation(now, current))


def record_recommendation(
    recommendations: tuple[Recommendation, ...], now: float, desired: int, behavior: Behavior
) -> tuple[Recommendation, ...]:
    """Append ``desired`` and drop proposals older than both windows (they can't matter)."""
    keep_s = max(behavior.scale_up.stabilization_window_s, behavior.scale_down.stabilization_window_s)
    cutoff = now - keep_s
    kept = tuple(r for r in recommendations if r.at > cutoff)
    return (*kept, Recommendation(now, desired))


def record_scale_event(
    events: tuple[ScaleEvent, ...], now: float, change: int, behavior: Behavior
) -> tuple[ScaleEvent, ...]:
    """Append a non-zero change and drop events older than the longest policy period."""
    longest = behavior.longest_period_s()
    if longest <= 0:
        return ()  # no rate policy: nothing will ever read the events
    cutoff = now - longest
    kept = tuple(e for e in events if e.at > cutoff)
    return (*kept, ScaleEvent(now, change)) if change else kept
