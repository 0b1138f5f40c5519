"""Benchmark: voxmesh's autoscaling policy vs the HPA on CPU vs KEDA on QPS, simulated.

Runs the discrete-event simulator (:mod:`voxmesh.autoscale.simulator`, the same ``decide``
the controller runs) on the festival-spike trace at 100x scale (2 -> 35 QPS per deployment,
200 -> 3,500 QPS, up to 2,500 replicas), plus sensitivity runs (cold-start time, warm-pool
size) and the diurnal and constant Poisson traces, and writes a Markdown report with the
tables and PNG plots.

Usage: ``.venv/bin/python benchmarks/autoscale_sim.py [--scale 100] [--seed 1]
[--report benchmarks/reports/autoscale_sim.md]``. Deterministic for a given seed.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import sys
import time
from pathlib import Path

import numpy as np

from voxmesh.autoscale.sim.autoscalers import voxmesh
from voxmesh.autoscale.sim.service import piper_default
from voxmesh.autoscale.simulator import ClusterConfig, Comparison, compare, format_table

HERE = Path(__file__).resolve().parent


def _describe_config(cmp: Comparison) -> str:
    lines = []
    for r, a in zip(cmp.results, cmp.autoscalers, strict=True):
        s = a.spec
        src = a.source
        pipeline = f"scrape {src.scrape_s} s, window {src.window_s} s"
        if src.poll_s:
            pipeline += f", poll {src.poll_s} s"
        if src.delay_s:
            pipeline += f", delay {src.delay_s} s"
        targets = ", ".join(f"{m.value} {v:.3g}" for m, v in s.targets().items())
        b = s.behavior
        lines.append(
            f"| {r.autoscaler} | {targets} | {a.sync_s:g} s | {pipeline} | "
            f"{b.scale_up.stabilization_window_s:g} s / {b.scale_down.stabilization_window_s:g} s | "
            f"{'unlimited' if not b.scale_up.policies else ', '.join(f'{p.value} {p.type.value}/{p.period_s:g}s' for p in b.scale_up.policies)} | "
            f"{s.min_replicas}-{s.max_replicas} | {s.warm_pool_size} |"
        )
    head = ("| autoscaler | target | sync | metric pipeline | stabilization up/down | scale-up rate | "
            "replicas | warm pool |\n|---|---|---|---|---|---|---|---|")
    return head + "\n" + "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scale", type=float, default=100.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--report", type=Path, default=HERE / "reports" / "autoscale_sim.md")
    ap.add_argument("--skip-extra", action="store_true", help="only the spike comparison")
    args = ap.parse_args(argv)
    out_dir = args.report.parent
    t0 = time.perf_counter()
    cluster = ClusterConfig()
    service = piper_default()

    print(f"spike x{args.scale:g} seed {args.seed} ...", flush=True)
    spike = compare("spike", scale=args.scale, seed=args.seed, cluster=cluster)
    print(spike.table(markdown=False), flush=True)
    plots = spike.plot(out_dir)

    sections: list[str] = []
    if not args.skip_extra:
        rows = []
        for cold in (10.0, 20.0):
            c = dataclasses.replace(cluster, cold_start_s=cold)
            cmp = compare("spike", scale=args.scale, seed=args.seed, cluster=c)
            rows.append(f"**cold start {cold:g} s**\n\n{cmp.table()}")
            print(f"cold start {cold:g} s\n{cmp.table(markdown=False)}", flush=True)
        sections.append("## Sensitivity: cold start 10 s and 20 s (spike)\n\n" + "\n\n".join(rows))

        pools = []
        for per_unit in (0.0, 0.3, 1.5):
            a = voxmesh(args.scale, warm_per_unit=per_unit)
            if per_unit == 0.0:
                a = dataclasses.replace(a, spec=dataclasses.replace(a.spec, warm_pool_size=0))
            cmp = compare("spike", scale=args.scale, seed=args.seed, cluster=cluster, autoscalers=[a])
            s = dataclasses.replace(cmp.summaries[0], autoscaler=f"voxmesh, pool {a.spec.warm_pool_size}")
            pools.append(s)
        sections.append("## Sensitivity: voxmesh warm-pool size (spike)\n\n" + format_table(pools))
        print(format_table(pools, markdown=False), flush=True)

        for name in ("diurnal", "poisson"):
            cmp = compare(name, scale=args.scale, seed=args.seed, cluster=cluster)
            plots += cmp.plot(out_dir) if name == "diurnal" else []
            sections.append(f"## {name} (x{args.scale:g})\n\n{cmp.table()}")
            print(f"{name}\n{cmp.table(markdown=False)}", flush=True)

    elapsed = time.perf_counter() - t0
    rel = [p.relative_to(out_dir) for p in plots]
    spike_plots = "\n\n".join(f"![{p.stem}]({p})" for p in rel if "spike" in p.name)
    other_plots = "\n\n".join(f"![{p.stem}]({p})" for p in rel if "spike" not in p.name)
    sc = spike.scenario
    needed_peak = sc.peak_qps * service.mean_s / 0.7
    report = f"""# Autoscaling simulator: voxmesh vs HPA (CPU) vs KEDA (Prometheus QPS)

Reproduce (deterministic for the seed; about {elapsed:.0f} s on this 2-core machine, shared):

```
.venv/bin/python benchmarks/autoscale_sim.py --scale {args.scale:g} --seed {args.seed}
# or only the spike table and plots:
.venv/bin/voxmesh sim --scenario spike --scale {args.scale:g} --seed {args.seed} --out benchmarks/reports
```

Python {platform.python_version()}, numpy {np.__version__}. Simulated time, not wall time: the
simulator runs the same `voxmesh.autoscale.policy.decide` the controller runs, on a seeded trace.

## Scenario and model

- **Trace (spike)**: {sc.scale:g}x a deployment going from 2 to 35 QPS: {sc.rate(np.array([0.0]))[0]:,.0f} QPS
  until t=300 s, ramp to {sc.peak_qps:,.0f} QPS over 30 s, hold 300 s, back to baseline over 60 s, tail to
  t={sc.duration_s:g} s. Poisson arrivals ({spike.summaries[0].requests:,} requests).
- **Service time**: Piper at one core per request, lognormal with mean {service.mean_s:.2f} s and p99
  {service.p99_s:.2f} s (measured here: p50 0.39 s with one onnxruntime thread). One request per replica
  at a time (1 core per replica). The peak needs about {needed_peak:,.0f} replicas at 70 %
  utilization ({sc.peak_qps * service.mean_s:,.0f} busy cores), so the pools go up to 2,500.
- **Gateway**: one FIFO queue per deployment, any free replica takes the next request (an ideal
  balancer); a request waiting more than {cluster.request_timeout_s:g} s is dropped (counted over SLO).
- **Cold start** {cluster.cold_start_s:g} s +- {cluster.cold_start_jitter_s:g} s (process start, model load,
  warm-up, until routable) for every autoscaler; **warm-pool promotion** 1 s (voxmesh only).
- **SLO** {cluster.slo_s:g} s.

{_describe_config(spike)}

Every autoscaler targets the same 70 % of a replica's capacity: voxmesh 0.7 requests in flight
per replica (queued ones included), the HPA 70 % CPU, KEDA 0.7 / 0.39 s = 1.79 QPS per replica.

## Result: spike at {args.scale:g}x

{spike.table()}

- p50/p99 over served requests; "over SLO" counts served slower than {cluster.slo_s:g} s plus dropped.
- replica-s: live replicas (booting, warm, serving, draining) integrated over the
  {sc.duration_s:g} s trace, i.e. what the cluster pays; voxmesh's warm pool shown apart.
- time to absorb: from the spike start to the end of the last 10 s window whose p99 was over the SLO.

{spike_plots}

## Reading

- **voxmesh** sees the spike within a few seconds (1 s sync, 5 s in-flight average, 1 s delay).
  In-flight counts queued requests and is not capped the way CPU is, so one decision asks for all
  the backlog needs; what remains is the cold start. It overshoots to the maximum while the
  backlog drains, then comes back after its 30 s scale-down window.
- **HPA on CPU** cannot ask for more than 1 / 0.7 = 1.43x the ready replicas per decision (CPU
  saturates at 100 %), and replicas still loading count as idle, so each step waits for the
  previous one to become ready (a cold start is about one 15 s sync period): a dozen steps over
  ~190 s while the queue grows past the timeout. After the spike the backlog keeps CPU at 100 %,
  so it keeps scaling up, then holds the peak for the 300 s scale-down window: it pays the most
  replica-seconds.
- **KEDA on QPS** is not capped (QPS grows with the offered load), but its metric arrives late
  (15 s scrape, rate over 1 min, 30 s polling) and the HPA default rate policy (at most double
  per 15 s) caps each step; QPS does not see the backlog either, so it under-provisions while
  the queue drains.
- The warm pool helps small steps (one promotion in 1 s instead of a 15 s load); for a 15x spike
  the cold start dominates, and a larger pool mostly costs replica-seconds (table below).
- Under steady Poisson traffic all three settle on the same serving count; voxmesh pays for its
  warm pool. On the diurnal trace voxmesh is cheaper because it follows the evening decline after
  30 s instead of 300 s; KEDA's late QPS shows as a higher p99 on the rise.

{chr(10).join(s + chr(10) for s in sections)}
{other_plots}

## Limits

- Ideal central queue per deployment: no per-replica queues or balancer imbalance; slots are
  exchangeable (a drain retires whichever busy slot finishes first).
- No node provisioning (the cluster autoscaler would add minutes to HPA/KEDA cold starts at this
  scale), no crashes, no retries; dropped requests do not come back.
- The HPA model uses the unified rule of `voxmesh.autoscale.steps` (unready pods count as idle
  when scaling up), not its full missing-metrics handling.
- Service times are independent draws from a fitted lognormal, not a replay of real requests.
"""
    args.report.write_text(report)
    print(f"wrote {args.report} ({elapsed:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
