"""Metric views of scaling decisions and replica states.

:func:`decision_metrics` is pure: a :class:`~voxmesh.autoscale.policy.Decision` (and the
replica count per lifecycle state) in, labeled values out. :func:`export` writes them into
a :class:`voxmesh.observability.metrics.Registry`. Label sets are bounded: ``state`` is a
:class:`ReplicaState` value, ``reason`` a :class:`Reason` value, ``metric`` a
:class:`Metric` value.

Families:
    voxmesh_replicas{deployment,state}                    gauge, every state (0 included)
    voxmesh_autoscaler_desired_replicas{deployment}       gauge
    voxmesh_autoscaler_current_replicas{deployment}       gauge
    voxmesh_autoscaler_metric_value{deployment,metric}    gauge, the input the policy saw
    voxmesh_autoscaler_metric_target{deployment,metric}   gauge
    voxmesh_autoscaler_decisions_total{deployment,reason} counter (+1 per decision)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from voxmesh.autoscale.lifecycle import ReplicaState
from voxmesh.autoscale.policy import Decision, ReplicaCounts
from voxmesh.observability.metrics import Registry

__all__ = ["HELP", "MetricValue", "counts_from_states", "decision_metrics", "export", "replicas_by_state"]

HELP = {
    "voxmesh_replicas": "Replicas per deployment by lifecycle state.",
    "voxmesh_autoscaler_desired_replicas": "Serving replicas the last scaling decision asked for.",
    "voxmesh_autoscaler_current_replicas": "Serving replicas the controller was converging to before it.",
    "voxmesh_autoscaler_metric_value": "Metric value the last scaling decision used.",
    "voxmesh_autoscaler_metric_target": "Per-replica target of that metric.",
    "voxmesh_autoscaler_decisions_total": "Scaling decisions by the step that set the result.",
}


@dataclass(frozen=True, slots=True)
class MetricValue:
    name: str
    labels: tuple[tuple[str, str], ...]
    value: float
    kind: Literal["gauge", "counter_inc"]


def replicas_by_state(states: Iterable[ReplicaState]) -> dict[ReplicaState, int]:
    """Count per state, with every state present (a gauge that disappears reads as stale)."""
    counted = Counter(states)
    return {s: counted.get(s, 0) for s in ReplicaState}


def counts_from_states(states: Iterable[ReplicaState], promoting: int = 0) -> ReplicaCounts:
    """The warm-pool plan's input from replica states (booting = starting + loading)."""
    c = replicas_by_state(states)
    return ReplicaCounts(
        serving=c[ReplicaState.SERVING], promoting=promoting, warm=c[ReplicaState.WARM],
        booting=c[ReplicaState.STARTING] + c[ReplicaState.LOADING], draining=c[ReplicaState.DRAINING],
    )


def decision_metrics(decision: Decision, states: Mapping[ReplicaState, int] | None = None) -> list[MetricValue]:
    dep = ("deployment", decision.deployment)
    out = [
        MetricValue("voxmesh_autoscaler_desired_replicas", (dep,), float(decision.desired_replicas), "gauge"),
        MetricValue("voxmesh_autoscaler_current_replicas", (dep,), float(decision.current_replicas), "gauge"),
        MetricValue("voxmesh_autoscaler_decisions_total", (dep, ("reason", decision.reason.value)), 1.0,
                    "counter_inc"),
    ]
    for p in decision.proposals:
        labels = (dep, ("metric", p.metric.value))
        out.append(MetricValue("voxmesh_autoscaler_metric_value", labels, p.value, "gauge"))
        out.append(MetricValue("voxmesh_autoscaler_metric_target", labels, p.target, "gauge"))
    if states is not None:
        for state in ReplicaState:
            out.append(MetricValue("voxmesh_replicas", (dep, ("state", state.value)),
                                   float(states.get(state, 0)), "gauge"))
    return out


def export(registry: Registry, decision: Decision, states: Mapping[ReplicaState, int] | None = None) -> None:
    """Apply :func:`decision_metrics` to ``registry`` (gauges set, counters incremented)."""
    for mv in decision_metrics(decision, states):
        names = tuple(k for k, _ in mv.labels)
        values = tuple(v for _, v in mv.labels)
        if mv.kind == "counter_inc":
            registry.counter(mv.name, HELP[mv.name], names).labels(*values).inc(mv.value)
        else:
            registry.gauge(mv.name, HELP[mv.name], names).labels(*values).set(mv.value)
