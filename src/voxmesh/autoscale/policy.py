"""The scaling policy: ``decide(snapshot, spec, state) -> (Decision, new_state)``, and the
warm-pool plan that turns a desired count into promotions, cold starts and drains.

``decide`` composes the steps of :mod:`voxmesh.autoscale.steps` in the HPA's order
(proposals -> max over metrics -> stabilization -> rate policies -> bounds -> scale to
zero). It is pure: the given state is never changed, the snapshot carries ``now``, and the
same inputs give the same decision, so the controller and the simulator run this one
function. The decision names the step that shaped the result (``reason``) and carries every
input, for the decision log and the ``decisions_total{reason}`` metric.

The warm pool (:func:`plan_replicas`) keeps ``warm_pool_size`` loaded, unrouted replicas so
that a scale-up promotes (about 1 s: one discovery ``Add``) instead of cold-starting (a model
load, 10-20 s). Limits: a spike larger than the pool still waits for cold starts; warm
replicas cost memory (and, on Kubernetes, their resource requests) while idle.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from voxmesh.autoscale import steps
from voxmesh.autoscale.snapshot import Metric, PolicyState, ScalingSpec, Snapshot
from voxmesh.autoscale.steps import MetricProposal, ZeroOutcome

__all__ = ["Decision", "Reason", "ReplicaCounts", "ReplicaPlan", "decide", "plan_replicas"]


class Reason(enum.Enum):
    """The step that set the final count (a bounded label set for metrics)."""

    METRICS = "metrics"  # the highest metric proposal, unchanged by later steps
    WITHIN_TOLERANCE = "within_tolerance"  # every metric within tolerance: keep current
    NO_METRICS = "no_metrics"  # nothing to go on: keep current
    UNREADY = "unready"  # a scale-up undone by counting unready replicas at zero usage
    METRICS_MISSING = "metrics_missing"  # a configured metric unreadable: no scale-down
    STABILIZED = "stabilized"  # held by the stabilization window
    RATE_LIMITED = "rate_limited"  # clamped by a behavior policy
    MIN_BOUND = "min_bound"
    MAX_BOUND = "max_bound"
    ACTIVATED = "activated"  # 0 -> 1 on the activation metric
    SCALED_TO_ZERO = "scaled_to_zero"
    IDLE_AT_ZERO = "idle_at_zero"


@dataclass(frozen=True, slots=True)
class Decision:
    deployment: str
    at: float
    current_replicas: int
    ready_replicas: int
    warm_replicas: int
    desired_replicas: int
    reason: Reason
    message: str
    proposals: tuple[MetricProposal, ...]
    # the count after each step, for the log: raw (max over metrics), stabilized, rate-limited, bounded
    raw: int
    stabilized: int
    rate_limited: int
    bounded: int

    @property
    def change(self) -> int:
        return self.desired_replicas - self.current_replicas

    def log_fields(self) -> dict[str, object]:
        """Flat fields for a structured decision log line."""
        fields: dict[str, object] = {
            "deployment": self.deployment,
            "current": self.current_replicas,
            "ready": self.ready_replicas,
            "warm": self.warm_replicas,
            "desired": self.desired_replicas,
            "reason": self.reason.value,
            "raw": self.raw,
            "stabilized": self.stabilized,
            "rate_limited": self.rate_limited,
        }
        for p in self.proposals:
            fields[f"{p.metric.value}"] = round(p.value, 4)
            fields[f"{p.metric.value}_target"] = p.target
            fields[f"{p.metric.value}_desired"] = p.desired
        return fields


def _describe(proposals: tuple[MetricProposal, ...]) -> str:
    parts = []
    for p in proposals:
        ratio = "n/a" if p.ratio is None else f"{p.ratio:.2f}"
        parts.append(f"{p.metric.value}={p.value:.3g} target={p.target:g} ratio={ratio} -> {p.desired}")
    return "; ".join(parts) or "no metric samples"


def decide(snapshot: Snapshot, spec: ScalingSpec, state: PolicyState) -> tuple[Decision, PolicyState]:
    """One scaling decision. Never mutates ``state``; returns the next one."""
    now = snapshot.now
    current = snapshot.current_replicas
    behavior = spec.behavior
    proposals = steps.propose(snapshot, spec)
    raw, top_metric = steps.apply_max_over_metrics(proposals, current)
    estimated = [p for p in proposals if p.desired is not None]
    missing = steps.missing_configured(snapshot, spec)
    if steps.blocks_scale_down(missing, raw, current, bool(estimated)):
        return _held_for_missing(snapshot, proposals, raw, missing, state)
    history = steps.seed_recommendations(state.recommendations, now, current, state.started)

    stabilized = steps.apply_stabilization(raw, current, now, history, behavior)
    rate_limited = steps.apply_rate_policies(stabilized, current, now, state.scale_events, behavior)
    bounded = steps.apply_bounds(rate_limited, spec.floor, spec.max_replicas)
    final, zero, last_active = steps.apply_scale_to_zero(bounded, snapshot, spec, state.last_active_at)
    if missing and zero is ZeroOutcome.TO_ZERO:
        final, zero = bounded, ZeroOutcome.NONE  # to zero is a scale-down too

    if zero is ZeroOutcome.ACTIVATE:
        reason = Reason.ACTIVATED
    elif zero is ZeroOutcome.TO_ZERO:
        reason = Reason.SCALED_TO_ZERO
    elif zero is ZeroOutcome.STAY_AT_ZERO:
        reason = Reason.IDLE_AT_ZERO
    elif bounded != rate_limited:
        reason = Reason.MIN_BOUND if bounded > rate_limited else Reason.MAX_BOUND
    elif rate_limited != stabilized:
        reason = Reason.RATE_LIMITED
    elif stabilized != raw:
        reason = Reason.STABILIZED
    elif not estimated:
        reason = Reason.NO_METRICS
    elif final == current and any(p.held_by_unready for p in estimated) and raw == current:
        reason = Reason.UNREADY
    elif all(p.within_tolerance for p in estimated):
        reason = Reason.WITHIN_TOLERANCE
    else:
        reason = Reason.METRICS

    lead = f" (highest: {top_metric.value})" if top_metric is not None and len(estimated) > 1 else ""
    message = (
        f"{current} -> {final}: {reason.value}{lead}; {_describe(proposals)}; "
        f"raw={raw} stabilized={stabilized} rate_limited={rate_limited} bounds=[{spec.floor},{spec.max_replicas}]"
    )
    decision = Decision(
        deployment=snapshot.deployment,
        at=now,
        current_replicas=current,
        ready_replicas=snapshot.ready_replicas,
        warm_replicas=snapshot.warm_replicas,
        desired_replicas=final,
        reason=reason,
        message=message,
        proposals=proposals,
        raw=raw,
        stabilized=stabilized,
        rate_limited=rate_limited,
        bounded=bounded,
    )
    # Only metric-driven proposals feed the stabilization window; at zero there are none.
    recommendations = (
        history
        if zero in (ZeroOutcome.STAY_AT_ZERO, ZeroOutcome.ACTIVATE)
        else steps.record_recommendation(history, now, raw, behavior)
    )
    new_state = replace(
        state,
        recommendations=recommendations,
        scale_events=steps.record_scale_event(state.scale_events, now, final - current, behavior),
        last_active_at=last_active,
        last_decision=decision,
        started=True,
    )
    return decision, new_state


def _held_for_missing(
    snapshot: Snapshot, proposals: tuple[steps.MetricProposal, ...], raw: int,
    missing: tuple[Metric, ...], state: PolicyState,
) -> tuple[Decision, PolicyState]:
    """Keep ``current``: the HPA returns an error before stabilization, so nothing is
    recorded (no recommendation, no scale event) and the controller does not count as
    started."""
    current = snapshot.current_replicas
    names = ",".join(m.value for m in missing)
    message = (
        f"{current} -> {current}: {Reason.METRICS_MISSING.value} ({names} unreadable: no scale-down); "
        f"{_describe(proposals)}; raw={raw}"
    )
    decision = Decision(
        deployment=snapshot.deployment, at=snapshot.now, current_replicas=current,
        ready_replicas=snapshot.ready_replicas, warm_replicas=snapshot.warm_replicas,
        desired_replicas=current, reason=Reason.METRICS_MISSING, message=message, proposals=proposals,
        raw=raw, stabilized=current, rate_limited=current, bounded=current,
    )
    return decision, replace(state, last_decision=decision)


@dataclass(frozen=True, slots=True)
class ReplicaCounts:
    """Replicas of one deployment by lifecycle state (``booting`` = starting + loading)."""

    serving: int = 0
    promoting: int = 0  # warm -> serving in progress (routable within ~1 s)
    warm: int = 0
    booting: int = 0
    draining: int = 0  # on their way out; not counted toward serving or the pool


@dataclass(frozen=True, slots=True)
class ReplicaPlan:
    """What to do now to converge on ``desired`` serving replicas and a full warm pool.

    ``promote`` warm replicas first; ``start`` cold ones for what remains plus the pool
    refill; ``cancel_booting`` boots that are no longer needed; ``drain`` serving ones
    (drained replicas refill the pool before anything is stopped); ``stop_warm`` surplus
    warm ones. A booting replica, once loaded, joins the pool and is promoted by the next
    plan if serving is still short.
    """

    promote: int = 0
    start: int = 0
    cancel_booting: int = 0
    drain: int = 0
    drain_to_warm: int = 0
    stop_warm: int = 0


def plan_replicas(desired: int, counts: ReplicaCounts, warm_pool_size: int, max_replicas: int) -> ReplicaPlan:
    """Warm-pool plan for one deployment (pure).

    The pool target shrinks near the top (``max_replicas - desired``): at the maximum there
    is nothing left to promote into, so no warm replica is kept.
    """
    pool_target = max(0, min(warm_pool_size, max_replicas - desired))
    active = counts.serving + counts.promoting
    deficit = desired - active
    promote = min(max(deficit, 0), counts.warm)
    short = max(deficit - promote, 0)
    warm_after = counts.warm - promote
    drain = min(max(-deficit, 0), counts.serving)  # a promotion in flight finishes first
    drain_to_warm = min(drain, max(pool_target - warm_after, 0))
    pool_gap = max(pool_target - warm_after - drain_to_warm, 0)
    want_booting = short + pool_gap
    start = max(want_booting - counts.booting, 0)
    cancel = max(counts.booting - want_booting, 0)
    stop_warm = max(warm_after - pool_target, 0) if short == 0 else 0
    return ReplicaPlan(
        promote=promote, start=start, cancel_booting=cancel, drain=drain,
        drain_to_warm=drain_to_warm, stop_warm=stop_warm,
    )
