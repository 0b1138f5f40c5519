"""Autoscaling: pure scaling policy (HPA/KEDA semantics), replica lifecycle, warm-pool plan.

The controller (:mod:`voxmesh.autoscale.supervisor`) and the simulator
(:mod:`voxmesh.autoscale.simulator`, ``voxmesh sim``) run the same :func:`decide`.
"""

from __future__ import annotations

from voxmesh.autoscale.lifecycle import IllegalTransition, ReplicaState, RestartBackoff, transition
from voxmesh.autoscale.metrics import decision_metrics
from voxmesh.autoscale.policy import Decision, Reason, ReplicaCounts, ReplicaPlan, decide, plan_replicas
from voxmesh.autoscale.snapshot import (
    Behavior,
    Metric,
    MetricKind,
    MetricSample,
    PolicyState,
    PolicyType,
    RatePolicy,
    ScalingRules,
    ScalingSpec,
    SelectPolicy,
    Snapshot,
    spec_from_deployment,
)

__all__ = [
    "Behavior",
    "Decision",
    "IllegalTransition",
    "Metric",
    "MetricKind",
    "MetricSample",
    "PolicyState",
    "PolicyType",
    "RatePolicy",
    "Reason",
    "ReplicaCounts",
    "ReplicaPlan",
    "ReplicaState",
    "RestartBackoff",
    "ScalingRules",
    "ScalingSpec",
    "SelectPolicy",
    "Snapshot",
    "decide",
    "decision_metrics",
    "plan_replicas",
    "spec_from_deployment",
    "transition",
]
