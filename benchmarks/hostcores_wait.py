"""What waiting for the host core budget costs: grant latency and a waiter's CPU.

    PYTHONPATH=src python benchmarks/hostcores_wait.py [--rounds 20] [--hold-s 0.5] [--overhead]

A holder process leases the whole budget, holds it ``--hold-s`` (sleeping), and releases it;
a waiter process (another deployment) asks for cores meanwhile and blocks in
``CoreBroker.acquire``. Per round the script records the grant latency (the waiter's return
minus the holder's release, both ``CLOCK_MONOTONIC``, which is system-wide) and the waiter
process's CPU seconds per second of waiting (``time.process_time``). Stdlib and the broker
only: it runs against any checkout's ``src`` (``PYTHONPATH=/path/to/checkout/src``), which is
how the before/after figures in ``benchmarks/reports/hostcores_wait.md`` were taken.

``--overhead`` (this checkout only, needs the worker's dependencies): what leasing costs a
request that never waits, an in-process worker (tone engine, no delay, 4 segments, one
request at a time) with and without a budget, 3 rotations, median of request p50s.
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


async def _request_p50_ms(with_budget: bool, n: int = 300) -> float:
    import asyncio

    import aiohttp
    from aiohttp.test_utils import TestServer

    from voxmesh.engines.tone import ToneEngine
    from voxmesh.settings import WorkerSettings
    from voxmesh.text.pronunciation import PronunciationDictionary
    from voxmesh.worker.server import WorkerApp, build_worker_app

    with tempfile.TemporaryDirectory(dir="/dev/shm" if Path("/dev/shm").is_dir() else None) as tmp:
        host = (CoreBroker(Path(tmp) / "cores.json", TOTAL), "a") if with_budget else None
        worker = WorkerApp(ToneEngine(), model="a", engine_name="tone", settings=WorkerSettings(calm_s=0.0),
                           cores=TOTAL, dictionary=PronunciationDictionary.default(), host_cores=host)
        async with TestServer(build_worker_app(worker)) as srv, aiohttp.ClientSession() as http:
            while not worker.ready:
                await asyncio.sleep(0.01)
            body = {"model": "a", "input": "One. Two. Three. Four.", "voice": "low", "response_format": "pcm"}
            took = []
            for i in range(n):
                t0 = time.perf_counter()
                async with http.post(str(srv.make_url("/v1/audio/speech")), json=body) as resp:
                    await resp.read()
                if i >= 20:  # warm
                    took.append(time.perf_counter() - t0)
    return 1000 * statistics.median(took)


def overhead() -> None:
    import asyncio

    runs: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(3):
        for with_budget in (False, True):
            runs[with_budget].append(asyncio.run(_request_p50_ms(with_budget)))
    off, on = statistics.median(runs[False]), statistics.median(runs[True])
    print(f"request p50, 4 segments, never waiting: budget off {off:.2f} ms, on {on:.2f} ms: "
          f"+{1000 * (on - off) / 4:.0f} us per segment (runs off {', '.join(f'{x:.2f}' for x in runs[False])}; "
          f"on {', '.join(f'{x:.2f}' for x in runs[True])})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--hold-s", type=float, default=0.5)
    ap.add_argument("--overhead", action="store_true", help="also: what leasing adds to a request that never waits")
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
    if args.overhead:
        overhead()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
