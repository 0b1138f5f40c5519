"""The worker against the raw engine at concurrency 1..2N on this machine (issue 18).

In one run, for each concurrency ``c`` in ``--conc`` (default 1..2N, N = the cores):

* ``worker``: a ``voxmesh worker --engine piper --threads N`` process, ``c`` closed-loop
  HTTP clients sending the harness sentences for ``--duration`` s;
* ``raw fair``: the Piper engine in this process, ``c`` closed-loop clients, at most N runs at
  once, each with the fair share ``N // min(c, N)`` threads (rounded down to a thread class);
* ``raw 1/core``: the same with one thread per run.

The best raw of the two per level is the reference; goal: worker throughput >= 0.95x and
p50 <= 1.1x of it. The raw figures are the engine alone (espeak phonemization included,
no HTTP), so the ratio also carries the worker's HTTP and scheduling overhead.

    .venv/bin/python benchmarks/scale.py --duration 8 --out benchmarks/reports/scale.md
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from sentences import HARNESS_SENTENCES  # noqa: E402
from tts import free_port, start, stop, wait_http  # noqa: E402

from voxmesh.engines.base import Segment, Span, VoiceMix  # noqa: E402
from voxmesh.engines.piper import PiperEngine  # noqa: E402
from voxmesh.worker.scheduler import class_at_most, thread_classes  # noqa: E402


def _summary(latencies: list[float], seconds: float) -> dict[str, float]:
    return {"req_s": len(latencies) / seconds, "p50_ms": 1000 * statistics.median(latencies) if latencies else 0.0,
            "n": float(len(latencies))}


async def _worker_level(url: str, conc: int, duration: float) -> dict[str, float]:
    lat: list[float] = []
    end = time.monotonic() + duration

    async def client(i: int, http: aiohttp.ClientSession) -> None:
        k = i
        while time.monotonic() < end:
            body = {"model": "piper", "input": HARNESS_SENTENCES[k % len(HARNESS_SENTENCES)], "voice": "joe",
                    "response_format": "pcm"}
            t0 = time.monotonic()
            async with http.post(url + "/v1/audio/speech", json=body) as resp:
                await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"worker answered {resp.status}")
            lat.append(time.monotonic() - t0)
            k += conc

    t0 = time.monotonic()
    async with aiohttp.ClientSession() as http:
        await asyncio.gather(*(client(i, http) for i in range(conc)))
    return _summary(lat, time.monotonic() - t0)


class FifoGate:
    """At most ``slots`` holders; waiters get in in arrival order (``threading.Semaphore``
    lets a releasing client take its slot straight back, which starves the others and makes
    the median latency look like the service time at any concurrency)."""

    def __init__(self, slots: int) -> None:
        self.free = slots
        self.cond = threading.Condition()
        self.next_ticket = 0
        self.serving = 0

    def __enter__(self) -> None:
        with self.cond:
            ticket = self.next_ticket
            self.next_ticket += 1
            self.cond.wait_for(lambda: ticket == self.serving and self.free > 0)
            self.free -= 1
            self.serving += 1
            self.cond.notify_all()

    def __exit__(self, *exc: object) -> None:
        with self.cond:
            self.free += 1
            self.cond.notify_all()


def _raw_level(engine: PiperEngine, cores: int, conc: int, threads: int, duration: float) -> dict[str, float]:
    lat: list[float] = []
    lock = threading.Lock()
    gate = FifoGate(min(conc, cores))
    end = time.monotonic() + duration

    def client(i: int) -> None:
        k = i
        while time.monotonic() < end:
            seg = Segment(spans=(Span(HARNESS_SENTENCES[k % len(HARNESS_SENTENCES)]),), language="en")
            t0 = time.monotonic()
            with gate:  # at most N runs at once; the rest queue in order, as in front of a worker
                engine.synthesize_segment(seg, VoiceMix.single("joe"), 1.0, threads=threads)
            with lock:
                lat.append(time.monotonic() - t0)
            k += conc

    t0 = time.monotonic()
    with ThreadPoolExecutor(conc) as pool:
        list(pool.map(client, range(conc)))
    return _summary(lat, time.monotonic() - t0)


def run(cores: int, levels: list[int], duration: float, tmp: Path) -> list[dict[str, Any]]:
    engine = PiperEngine()
    engine.load(cores)
    engine.warm_up()
    classes = thread_classes(cores)
    port = free_port()
    proc = start([sys.executable, "-m", "voxmesh", "worker", "--engine", "piper", "--model", "piper", "--port",
                  str(port), "--threads", str(cores)], tmp / "worker.log")
    url = f"http://127.0.0.1:{port}"
    rows = []
    try:
        wait_http(url + "/readyz")
        asyncio.run(_worker_level(url, 2, 2.0))  # first requests, narrow session warm
        for c in levels:
            fair = class_at_most(classes, max(1, cores // min(c, cores)))
            for k in {fair, 1}:  # the raw engine's class sessions exist before timing
                engine.synthesize_segment(Segment(spans=(Span("Warm."),), language="en"), VoiceMix.single("joe"),
                                          1.0, threads=k)
            row: dict[str, Any] = {"conc": c, "fair_threads": fair}
            row["worker"] = asyncio.run(_worker_level(url, c, duration))
            row["raw_fair"] = _raw_level(engine, cores, c, fair, duration)
            row["raw_1"] = _raw_level(engine, cores, c, 1, duration)
            print(f"  c={c}: {row}", file=sys.stderr, flush=True)
            rows.append(row)
    finally:
        stop(proc)
    return rows


def report(rows: list[dict[str, Any]], args: argparse.Namespace, cores: int, load: tuple[float, ...]) -> str:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# The worker against the best raw grant rule, concurrency 1..2N",
        "",
        f"Command: `.venv/bin/python benchmarks/scale.py --duration {args.duration} --conc "
        f"{','.join(str(r['conc']) for r in rows)} --out {args.out}`",
        "",
        f"Run {now} on {cores} cores; load average before the run {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} "
        "(1 / 5 / 15 min). One window per level and setting, run back to back: a shared machine's noise is in "
        "every figure.",
        "",
        "| c | worker req/s | p50 ms | raw fair (threads) req/s | p50 ms | raw 1/core req/s | p50 ms "
        "| worker / best raw req/s | p50 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        w, f, o = r["worker"], r["raw_fair"], r["raw_1"]
        best = f if f["req_s"] >= o["req_s"] else o
        lines.append(
            f"| {r['conc']} | {w['req_s']:.2f} | {w['p50_ms']:.0f} | {f['req_s']:.2f} ({r['fair_threads']}) | "
            f"{f['p50_ms']:.0f} | {o['req_s']:.2f} | {o['p50_ms']:.0f} | {w['req_s'] / best['req_s']:.2f}x | "
            f"{w['p50_ms'] / best['p50_ms']:.2f}x |")
    lines += ["", "Goal: worker >= 0.95x the best raw req/s and p50 <= 1.1x at every level."]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cores = os.cpu_count() or 1
    ap.add_argument("--conc", default=",".join(str(c) for c in range(1, 2 * cores + 1)))
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "reports" / "scale.md"))
    args = ap.parse_args()
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        rows = run(cores, [int(c) for c in args.conc.split(",")], args.duration, Path(tmp))
    text = report(rows, args, cores, load)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
