"""The discrete-event engine: one autoscaler, one trace, one seed.

Model:
- The gateway holds one FIFO queue per deployment and hands a request to any free slot
  (``concurrency`` slots per replica, 1 by default: one request per core). Replicas are
  identical, so the engine keeps counts, not replica objects: a heap of completion times,
  a deque of waiting requests, and counters per lifecycle state. That is what makes 3,500
  QPS over ~2,000 replicas run in seconds.
- A request waiting longer than ``request_timeout_s`` is dropped (the client gave up); it
  counts as over the SLO.
- Every ``sync_s`` the autoscaler reads its metric through its pipeline
  (:class:`~voxmesh.autoscale.sim.autoscalers.MetricSource`), calls the same
  :func:`voxmesh.autoscale.policy.decide` the controller calls, and applies
  :func:`voxmesh.autoscale.policy.plan_replicas`: promote warm replicas (routable after
  ``promotion_s``), cold-start the rest (routable after ``cold_start_s`` +- jitter), drain
  the surplus (idle slots at once, busy ones when their request ends).

Limits: slots are exchangeable (a drain retires whichever slot finishes first; a real
controller picks replicas and waits for theirs); the balancer is an ideal central queue
(no per-replica queues, no P2C imbalance); no failures or crashes are simulated.
"""

from __future__ import annotations

import heapq
import math
import random
import time
from collections import Counter, deque
from dataclasses import dataclass, field

import numpy as np

from voxmesh.autoscale.policy import ReplicaCounts, decide, plan_replicas
from voxmesh.autoscale.sim.autoscalers import AutoscalerConfig, MetricSource
from voxmesh.autoscale.snapshot import Metric, MetricSample, PolicyState, Snapshot
from voxmesh.autoscale.steps import ceil_replicas

__all__ = ["ClusterConfig", "SimResult", "initial_replicas", "run"]

_SAMPLE, _SYNC, _BOOTED, _PROMOTED = 0, 1, 2, 3
_INF = math.inf
_SERIES = ("arrivals", "busy_int", "inflight_int", "cap_int", "live_int", "warm_int",
           "ready", "live", "warm", "booting", "target", "queue", "in_flight")


@dataclass(frozen=True)
class ClusterConfig:
    concurrency: int = 1  # requests per replica at once (1 per core, 1 core per replica)
    cold_start_s: float = 15.0  # process start + model load + warm-up until routable
    cold_start_jitter_s: float = 2.0  # uniform +- around cold_start_s
    request_timeout_s: float = 60.0
    slo_s: float = 2.0


@dataclass
class SimResult:
    autoscaler: str
    scenario: str
    duration_s: float
    arrival_times: np.ndarray
    latency: np.ndarray  # seconds; inf for requests dropped after the timeout
    series: dict[str, np.ndarray]  # one value per simulated second (see _SERIES)
    reasons: Counter[str] = field(default_factory=Counter)
    decisions: int = 0
    wall_s: float = 0.0


def _metric_value(source: MetricSource, s: dict[str, list[float]], now: float) -> MetricSample | None:
    last = len(s["arrivals"]) - 1
    hi = min(source.observed_second(now), last)
    lo = max(hi - source.window_s, 0)
    if hi <= lo:
        return None
    span = float(hi - lo)
    m = source.metric
    if m is Metric.QPS:
        value = (s["arrivals"][hi] - s["arrivals"][lo]) / span
    elif m is Metric.IN_FLIGHT:
        value = (s["inflight_int"][hi] - s["inflight_int"][lo]) / span
    elif m is Metric.QUEUE_LENGTH:
        value = ((s["inflight_int"][hi] - s["busy_int"][hi]) - (s["inflight_int"][lo] - s["busy_int"][lo])) / span
    else:
        cap = s["cap_int"][hi] - s["cap_int"][lo]
        if cap <= 0:
            return None
        value = min(1.0, (s["busy_int"][hi] - s["busy_int"][lo]) / cap)
    return MetricSample(m, value, source.kind)


def run(
    arrival_times: np.ndarray,
    service_times: np.ndarray,
    auto: AutoscalerConfig,
    cluster: ClusterConfig,
    *,
    duration_s: float,
    scenario: str = "",
    initial_replicas: int | None = None,
    seed: int = 0,
) -> SimResult:
    """Simulate one autoscaler over the given arrivals (deterministic for a given seed)."""
    wall0 = time.perf_counter()
    rng = random.Random(seed)
    spec = auto.spec
    conc = cluster.concurrency
    timeout = cluster.request_timeout_s
    arr: list[float] = arrival_times.tolist()
    svc: list[float] = service_times.tolist()
    n = len(arr)
    lat = [_INF] * n

    target = max(spec.floor, min(spec.max_replicas, initial_replicas or spec.floor))
    serving = target
    free = serving * conc
    pool0 = max(0, min(spec.warm_pool_size, spec.max_replicas - target))
    warm, promoting, booting = pool0, 0, 0
    draining, drain_pending, drain_warm_budget = 0, 0, 0
    boots: dict[int, None] = {}
    cancelled: set[int] = set()
    next_id = 0

    done: list[float] = []
    queue: deque[int] = deque()
    ctl: list[tuple[float, int, int, int]] = []
    seq = 0
    busy = 0
    busy_int = inflight_int = 0.0
    last = 0.0
    cap_int = live_int = warm_int = 0.0
    acct_last = 0.0
    state = PolicyState()
    samples: dict[str, list[float]] = {k: [] for k in _SERIES}
    reasons: Counter[str] = Counter()
    decisions = 0

    def push(t: float, kind: int, data: int = 0) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(ctl, (t, kind, seq, data))

    def acct(t: float) -> None:
        """Integrate the slowly-changing quantities (capacity, replicas) up to ``t``."""
        nonlocal cap_int, live_int, warm_int, acct_last
        dt = t - acct_last
        cap_int += (serving * conc + drain_pending) * dt
        live_int += (serving + draining + promoting + booting + warm) * dt
        warm_int += warm * dt
        acct_last = t

    def add_slots(t: float, k: int) -> None:
        nonlocal free, busy
        for _ in range(k):
            while queue:
                j = queue.popleft()
                if t - arr[j] > timeout:
                    continue  # the client gave up; lat stays inf
                s = svc[j]
                heapq.heappush(done, t + s)
                lat[j] = t - arr[j] + s
                busy += 1
                break
            else:
                free += 1

    def finish_drains() -> None:
        nonlocal draining, drain_warm_budget, warm
        still = -(-drain_pending // conc)
        while draining > still:
            draining -= 1
            if drain_warm_budget > 0:
                drain_warm_budget -= 1
                warm += 1

    def reconcile(t: float) -> None:
        nonlocal warm, promoting, booting, serving, draining, free, drain_pending, drain_warm_budget, next_id
        acct(t)
        plan = plan_replicas(target, ReplicaCounts(serving, promoting, warm, booting, draining),
                             spec.warm_pool_size, spec.max_replicas)
        if plan.promote:
            warm -= plan.promote
            promoting += plan.promote
            for _ in range(plan.promote):
                push(t + auto.promotion_s, _PROMOTED)
        for _ in range(plan.start):
            booting += 1
            next_id += 1
            boots[next_id] = None
            jitter = cluster.cold_start_jitter_s
            delay = cluster.cold_start_s + (rng.uniform(-jitter, jitter) if jitter else 0.0)
            push(t + max(delay, 0.0), _BOOTED, next_id)
        for _ in range(plan.cancel_booting):
            newest = next(reversed(boots))
            del boots[newest]
            cancelled.add(newest)
            booting -= 1
        if plan.drain:
            serving -= plan.drain
            draining += plan.drain
            need = plan.drain * conc
            idle = min(free, need)
            free -= idle
            drain_pending += need - idle
            drain_warm_budget += plan.drain_to_warm
            finish_drains()
        warm -= plan.stop_warm

    def record(t: float) -> None:
        acct(t)
        samples["arrivals"].append(float(i))
        samples["busy_int"].append(busy_int)
        samples["inflight_int"].append(inflight_int)
        samples["cap_int"].append(cap_int)
        samples["live_int"].append(live_int)
        samples["warm_int"].append(warm_int)
        samples["ready"].append(serving)
        samples["live"].append(serving + draining + promoting + booting + warm)
        samples["warm"].append(warm)
        samples["booting"].append(booting)
        samples["target"].append(target)
        samples["queue"].append(len(queue))
        samples["in_flight"].append(busy + len(queue))

    end = float(duration_s)
    push(0.0, _SAMPLE)
    push(auto.sync_offset_s if auto.sync_offset_s > 0 else auto.sync_s, _SYNC)
    i = 0
    heappush, heappop = heapq.heappush, heapq.heappop
    while True:
        ta = arr[i] if i < n else _INF
        td = done[0] if done else _INF
        tc = ctl[0][0] if ctl else _INF
        if ta <= td and ta <= tc:
            if ta == _INF:
                break
            t = ta
            dt = t - last
            qlen = len(queue)
            busy_int += busy * dt
            inflight_int += (busy + qlen) * dt
            last = t
            if free > 0:
                free -= 1
                busy += 1
                s = svc[i]
                heappush(done, t + s)
                lat[i] = s
            else:
                queue.append(i)
            i += 1
        elif td <= tc:
            t = heappop(done)
            dt = t - last
            busy_int += busy * dt
            inflight_int += (busy + len(queue)) * dt
            last = t
            busy -= 1
            if drain_pending > 0:
                acct(t)
                drain_pending -= 1
                finish_drains()
                continue
            while queue:
                j = queue.popleft()
                if t - arr[j] > timeout:
                    continue
                s = svc[j]
                heappush(done, t + s)
                lat[j] = t - arr[j] + s
                busy += 1
                break
            else:
                free += 1
        else:
            t, kind, _, data = heappop(ctl)
            dt = t - last
            busy_int += busy * dt
            inflight_int += (busy + len(queue)) * dt
            last = t
            if kind == _SAMPLE:
                while queue and t - arr[queue[0]] > timeout:
                    queue.popleft()
                record(t)
                if t + 1.0 <= end:
                    push(t + 1.0, _SAMPLE)
            elif kind == _SYNC:
                sample = _metric_value(auto.source, samples, t)
                snap = Snapshot(t, "sim", target, serving, warm, (sample,) if sample else ())
                decision, state = decide(snap, spec, state)
                reasons[decision.reason.value] += 1
                decisions += 1
                target = decision.desired_replicas
                reconcile(t)
                if t + auto.sync_s < end:
                    push(t + auto.sync_s, _SYNC)
            elif kind == _BOOTED:
                if data in cancelled:
                    cancelled.discard(data)
                    continue
                del boots[data]
                acct(t)
                booting -= 1
                if serving + promoting < target:
                    serving += 1  # needed now: routable as soon as it is ready
                    add_slots(t, conc)
                else:
                    warm += 1
                reconcile(t)
            else:  # _PROMOTED
                acct(t)
                promoting -= 1
                serving += 1
                add_slots(t, conc)

    series = {k: np.asarray(v, dtype=float) for k, v in samples.items()}
    return SimResult(
        autoscaler=auto.name, scenario=scenario, duration_s=end,
        arrival_times=arrival_times, latency=np.asarray(lat, dtype=float), series=series,
        reasons=reasons, decisions=decisions, wall_s=time.perf_counter() - wall0,
    )


def initial_replicas(rate_qps: float, mean_service_s: float, target_utilization: float, concurrency: int) -> int:
    """Replicas that carry ``rate_qps`` at the target utilization (the common starting point)."""
    return max(1, ceil_replicas(rate_qps * mean_service_s / (target_utilization * concurrency)))
