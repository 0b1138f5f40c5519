"""``voxmesh sim``: run the autoscaling simulator and write its table and plots.

The CLI module calls :func:`add_parser` with its subparsers; the handler returns an exit code.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from voxmesh.autoscale.sim.service import LogNormal
from voxmesh.autoscale.sim.trace import SCENARIOS
from voxmesh.autoscale.simulator import ClusterConfig, compare

__all__ = ["add_parser", "run_sim"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "sim",
        help="simulate autoscalers (voxmesh vs HPA on CPU vs KEDA on QPS) on a traffic trace",
        description="Discrete-event simulation of a cluster under a trace; prints a comparison table "
        "and writes PNG plots (replicas and p99 latency over time).",
    )
    p.add_argument("--scenario", choices=sorted(SCENARIOS), default="spike")
    p.add_argument("--scale", type=float, default=100.0,
                   help="traffic multiplier: 100 = a hundred deployments' worth (spike peak 3,500 QPS)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, default=Path("sim-out"), help="directory for the PNG plots")
    p.add_argument("--slo", type=float, default=2.0, help="latency SLO in seconds")
    p.add_argument("--cold-start", type=float, default=15.0, help="model load time until routable (s)")
    p.add_argument("--timeout", type=float, default=60.0, help="request timeout: waiting longer drops it (s)")
    p.add_argument("--service-mean", type=float, default=0.39, help="mean service time per request (s)")
    p.add_argument("--service-p99", type=float, default=0.6, help="p99 service time per request (s)")
    p.set_defaults(func=run_sim)


def run_sim(args: argparse.Namespace) -> int:
    if args.scale <= 0:
        print("voxmesh sim: --scale must be > 0", file=sys.stderr)
        return 2
    try:
        service = LogNormal.fit(args.service_mean, args.service_p99)
    except ValueError as exc:
        print(f"voxmesh sim: service time: {exc}", file=sys.stderr)
        return 2
    cluster = ClusterConfig(cold_start_s=args.cold_start, slo_s=args.slo, request_timeout_s=args.timeout)
    cmp = compare(args.scenario, scale=args.scale, seed=args.seed, cluster=cluster, service=service)
    print(f"scenario={args.scenario} scale={args.scale:g} seed={args.seed} slo={args.slo:g}s "
          f"cold_start={args.cold_start:g}s timeout={args.timeout:g}s "
          f"service=lognormal(mean {args.service_mean:g}s, p99 {args.service_p99:g}s)")
    print(cmp.table(markdown=False))
    for path in cmp.plot(args.out):
        print(f"wrote {path}")
    return 0
