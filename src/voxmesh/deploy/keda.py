"""The replica count KEDA asks the HPA for, from one trigger's metric (sans-IO).

A ScaledObject trigger with ``metricType: AverageValue`` (prometheus ``threshold``, rabbitmq
``value``, postgresql ``targetQueryValue``) becomes an HPA external metric whose target is an
average per replica, so the HPA wants ``ceil(metric / target)`` replicas, bounded by
``minReplicaCount`` and ``maxReplicaCount``. At or below the activation threshold a
deployment with ``minReplicaCount: 0`` goes to zero; above it, to at least one. Several
triggers: the largest proposal wins (as the local controller takes the largest).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

__all__ = ["desired_replicas", "desired_replicas_many"]


def desired_replicas(value: float, target: float, min_replicas: int, max_replicas: int,
                     activation: float = 0.0) -> int:
    if target <= 0:
        raise ValueError(f"target must be positive, got {target}")
    if value <= activation:
        return min_replicas
    return max(min_replicas, 1, min(max_replicas, math.ceil(value / target)))


def desired_replicas_many(proposals: Iterable[tuple[float, float]], min_replicas: int, max_replicas: int) -> int:
    """``proposals``: (metric value, target) per trigger."""
    return max((desired_replicas(v, t, min_replicas, max_replicas) for v, t in proposals), default=min_replicas)
