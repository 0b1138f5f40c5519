"""What waiting for the host core budget costs: grant latency and a waiter's CPU.

    PYTHONPATH=src python benchmarks/hostcores_wait.py [--rounds 20] [--hold-s 0.5]

A holder process leases the whole budget, holds it ``--hold-s`` (sleeping), and releases it;
a waiter process (another deployment) asks for cores meanwhile and blocks in
``CoreBroker.acquire``. Per round the script records the grant latency (the waiter's return
minus the holder's release, both ``CLOCK_MONOTONIC``, which is system-wide) and the waiter
process's CPU seconds per second of waiting (``time.process_time``). Stdlib and the broker
only: it runs against any checkout's ``src`` (``PYTHONPATH=/path/to/checkout/src``), which is
how the before/after figures in ``benchmarks/reports/hostcores_wait.md`` were taken.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from pathlib import Path

from voxmesh.hostcores.broker import CoreBroker

TOTAL = 2


def _holder(path: str, rounds: int, hold_s: float, ready: mp.Event, go: mp.Event,  # type: ignore[type-arg]
            done: mp.Event, out: mp.Queue) -> None:  # type: ignore[type-arg]
    broker = CoreBroker(path, TOTAL)
    for _ in range(rounds):
        done.wait()  # the waiter gave its lease of the last round back
        done.clear()
        lease, cores = broker.acquire("holder", TOTAL)
        assert cores == TOTAL, cores
        ready.set()
        go.wait()
        go.clear()
        time.sleep(hold_s)  # the waiter is blocked in acquire by now
        t_release = time.monotonic()
        broker.release(lease)
        out.put(t_release)


def _waiter(path: str, rounds: int, ready: mp.Event, go: mp.Event, done: mp.Event,  # type: ignore[type-arg]
            out: mp.Queue) -> None:  # type: ignore[type-arg]
    broker = CoreBroker(path, TOTAL)
    for _ in range(rounds):
        ready.wait()
        ready.clear()
        cpu0, t0 = time.process_time(), time.monotonic()
        go.set()
        lease, _cores = broker.acquire("waiter", 1)
        t_granted = time.monotonic()
        cpu = time.process_time() - cpu0
        broker.release(lease)
        done.set()
        out.put((t_granted, cpu, t_granted - t0))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--hold-s", type=float, default=0.5)
    args = ap.parse_args(argv)
    ctx = mp.get_context("fork")
    with tempfile.TemporaryDirectory(dir="/dev/shm" if Path("/dev/shm").is_dir() else None) as tmp:
        path = str(Path(tmp) / "cores.json")
        CoreBroker(path, TOTAL)
        ready, go, done = ctx.Event(), ctx.Event(), ctx.Event()
        done.set()
        releases, grants = ctx.Queue(), ctx.Queue()
        procs = [ctx.Process(target=_holder, args=(path, args.rounds, args.hold_s, ready, go, done, releases)),
                 ctx.Process(target=_waiter, args=(path, args.rounds, ready, go, done, grants))]
        for p in procs:
            p.start()
        rel = [releases.get(timeout=60) for _ in range(args.rounds)]
        got = [grants.get(timeout=60) for _ in range(args.rounds)]
        for p in procs:
            p.join(30)
    latency_ms = sorted(1000 * (g[0] - r) for r, g in zip(rel, got, strict=True))
    cpu_frac = [g[1] / g[2] for g in got]
    print(f"broker: {sys.modules[CoreBroker.__module__].__file__}")
    print(f"rounds {args.rounds}, hold {args.hold_s} s, budget {TOTAL}")
    print(f"grant latency after release: p50 {statistics.median(latency_ms):.2f} ms, "
          f"p90 {latency_ms[int(0.9 * (len(latency_ms) - 1))]:.2f} ms, max {latency_ms[-1]:.2f} ms")
    print(f"waiter CPU while waiting: {100 * statistics.mean(cpu_frac):.1f} % of a core "
          f"({1000 * statistics.mean(g[1] for g in got):.1f} ms CPU per {args.hold_s} s wait)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
