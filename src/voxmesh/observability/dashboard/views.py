"""The small JSON views the dashboard needs beyond what the API already serves.

``GET /admin/autoscaler``  per deployment: replicas by state, desired count, bounds, warm pool
                           (size and target), the policy's last decision with its reason,
                           message and per-metric proposals; the supervisor's recent events
                           (spawn, ready, promote, scale with its reason, drain, crash).
``GET /admin/stages``      per deployment and stage: requests, mean and p50/p95/p99 (ms) of
                           ``voxmesh_worker_stage_seconds``, summed over the replicas as the
                           supervisor last scraped them (no scrape of its own).

Pure functions of what they are given (the supervisor and autoscaler are read, never
changed), so a test feeds them plain objects.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from voxmesh.observability.metrics import LATENCY_BUCKETS, HistogramChild
from voxmesh.observability.stages import STAGES

__all__ = ["autoscaler_view", "stages_view"]

_STAGE_LINE = re.compile(r'^voxmesh_worker_stage_seconds_(bucket|sum|count)\{([^}]*)\} (\S+)$')
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def _decision(d: Any) -> dict[str, Any] | None:
    if d is None:
        return None
    return {
        "desired": d.desired_replicas, "current": d.current_replicas, "warm": d.warm_replicas,
        "reason": d.reason.value, "message": d.message,
        "steps": {"raw": d.raw, "stabilized": d.stabilized, "rate_limited": d.rate_limited, "bounded": d.bounded},
        "proposals": [
            {"metric": p.metric.value, "value": round(p.value, 3), "target": p.target,
             "desired": p.desired, "within_tolerance": p.within_tolerance}
            for p in d.proposals
        ],
    }


def autoscaler_view(supervisor: Any, autoscaler: Any, *, events: int = 50) -> dict[str, Any]:
    counts: Mapping[str, Mapping[str, int]] = supervisor.counts()
    last: Mapping[str, Any] = getattr(autoscaler, "last", {}) if autoscaler is not None else {}
    deployments: dict[str, Any] = {}
    for name, dep in sorted(supervisor.deployments.items()):
        deployments[name] = {
            "replicas": dict(counts.get(name, {})),
            "desired": supervisor.desired.get(name),
            "min": dep.replicas.min, "max": dep.replicas.max,
            "warm_pool": {"size": len(supervisor.warm(name)), "target": dep.replicas.warm},
            "list": [{"id": r.id, "state": r.state.value, "restarts": r.restarts,
                      "in_flight": r.metrics.get("voxmesh_worker_in_flight"),
                      "queue": r.metrics.get("voxmesh_worker_queue_length")}
                     for r in supervisor.replicas.get(name, [])
                     if r.state.value != "stopped"],
            "last_decision": _decision(last.get(name)),
        }
    return {"deployments": deployments, "events": list(supervisor.events[-events:])}


def _histogram(cumulative: dict[float, float], total: float, count: float) -> HistogramChild:
    child = HistogramChild(LATENCY_BUCKETS)
    prev = 0.0
    top = 0.0
    for i, bound in enumerate((*LATENCY_BUCKETS, math.inf)):
        n = cumulative.get(bound, prev)
        child.counts[i] = int(max(0.0, n - prev))
        if child.counts[i]:
            top = bound if not math.isinf(bound) else max(top, total / max(count, 1.0))
        prev = n
    child.count, child.sum = int(count), total
    child.min, child.max = 0.0, top
    return child


def stages_view(texts: Iterable[tuple[Mapping[str, str], str]]) -> dict[str, Any]:
    """Worker metric texts (as :meth:`Supervisor.metric_texts` gives them) -> stage figures."""
    buckets: dict[tuple[str, str], dict[float, float]] = {}
    sums: dict[tuple[str, str], float] = {}
    counts: dict[tuple[str, str], float] = {}
    for labels, text in texts:
        for line in text.splitlines():
            m = _STAGE_LINE.match(line)
            if m is None:
                continue
            kind, raw, value = m.groups()
            pairs = dict(_LABEL.findall(raw))
            key = (pairs.get("deployment", labels.get("deployment", "")), pairs.get("stage", ""))
            if kind == "bucket":
                le = math.inf if pairs.get("le") == "+Inf" else float(pairs.get("le", "nan"))
                per = buckets.setdefault(key, {})
                per[le] = per.get(le, 0.0) + float(value)
            elif kind == "sum":
                sums[key] = sums.get(key, 0.0) + float(value)
            else:
                counts[key] = counts.get(key, 0.0) + float(value)
    out: dict[str, dict[str, Any]] = {}
    for (dep, stage_name), count in sorted(counts.items()):
        total = sums.get((dep, stage_name), 0.0)
        hist = _histogram(buckets.get((dep, stage_name), {}), total, count)

        def ms(q: float, h: HistogramChild = hist) -> float | None:
            v = h.quantile(q)
            return None if math.isnan(v) else round(1000 * v, 3)

        out.setdefault(dep, {})[stage_name] = {
            "requests": int(count), "sum_ms": round(1000 * total, 3),
            "mean_ms": round(1000 * total / count, 3) if count else None,
            "p50_ms": ms(0.5), "p95_ms": ms(0.95), "p99_ms": ms(0.99),
        }
    return {"stages": list(STAGES), "deployments": out}
