"""Tail latency at concurrency 8: how much of p99/p50 is the scheduler's, how much the machine's.

Issue 7 asks for p99 <= 1.05x p50 at concurrency 8 (closed loop over the peers harness's 20
sentences, 2 cores, 30 s windows). This benchmark splits the measured tail into its parts.

1. **Measured.** A ``voxmesh worker`` (piper, all cores) under that load for ``--seconds``.
   Per request: the client's latency and the worker's ``Server-Timing`` (queue wait,
   synthesis). p99/p50 per 30 s window, and per 5 s window the mean synthesis time: the
   machine's speed over time (``tail.png``).
2. **Replayed.** The same closed loop (8 clients, a shared sentence counter, no think time)
   in simulation, through the worker's own scheduler (:class:`CoreScheduler`, sans-IO, on a
   simulated clock), with service times taken from step 1:

   * *lengths only*: each sentence always takes its measured mean time, so the only spread
     is that the sentences differ in length;
   * *+ per-request noise*: each request draws one of its sentence's measured times, which
     adds the run-to-run spread of one inference but not the machine's slow periods.

   Each with the worker's order (latest start, cost = characters x learned seconds per
   character) and plain FIFO, ``--windows`` simulated 30 s windows each.

The gap between a replayed row and the measured one is what the machine adds (slow periods
last seconds, so every request in them waits longer); the gap between the worker's order and
the FIFO row is what the ordering buys.

    .venv/bin/python benchmarks/tail.py --seconds 120 --windows 200
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import itertools
import os
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from sentences import HARNESS_SENTENCES  # noqa: E402
from tts import free_port, start, stop, wait_http  # noqa: E402

from voxmesh.worker.scheduler import Admit, CoreScheduler  # noqa: E402

CONC = 8
CORES = 2
WINDOW_S = 30.0
WARMUP_S = 3.0


@dataclass(frozen=True)
class Sample:
    sentence: int
    sent_at: float  # seconds since the load started
    latency_ms: float
    queue_ms: float
    synth_ms: float


def ratio(latencies: list[float]) -> tuple[float, float, float]:
    """p50, p99 (nearest rank, as the peers harness) and p99/p50."""
    xs = sorted(latencies)
    p50 = xs[len(xs) // 2]
    p99 = xs[min(len(xs) - 1, int(0.99 * len(xs)))]
    return p50, p99, p99 / p50


# ---- 1. measured ---------------------------------------------------------------------------
def _server_timing(value: str) -> dict[str, float]:
    parts = (p.strip().split(";dur=") for p in value.split(",") if ";dur=" in p)
    return {name: float(dur) for name, dur in parts}


async def closed_loop(url: str, seconds: float) -> list[Sample]:
    counter = itertools.count()
    samples: list[Sample] = []
    t_start = time.monotonic()
    end = t_start + WARMUP_S + seconds
    async with aiohttp.ClientSession() as session:
        async def client() -> None:
            while time.monotonic() < end:
                i = next(counter) % len(HARNESS_SENTENCES)
                body = {"model": "piper", "input": HARNESS_SENTENCES[i], "voice": "joe", "response_format": "wav"}
                t0 = time.monotonic()
                async with session.post(url + "/v1/audio/speech", json=body) as resp:
                    await resp.read()
                    if resp.status != 200:
                        raise RuntimeError(f"worker answered {resp.status}")
                    timing = _server_timing(resp.headers.get("Server-Timing", ""))
                t1 = time.monotonic()
                if t0 >= t_start + WARMUP_S and t1 <= end:
                    samples.append(Sample(i, t0 - t_start - WARMUP_S, 1000 * (t1 - t0),
                                          timing["queue"], timing["synth"]))
        await asyncio.gather(*(client() for _ in range(CONC)))
    return samples


def measure(seconds: float, log: Path) -> list[Sample]:
    port = free_port()
    proc = start([sys.executable, "-m", "voxmesh", "worker", "--engine", "piper", "--model", "piper",
                  "--port", str(port), "--threads", str(CORES)], log)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/readyz", timeout=120)
        asyncio.run(closed_loop(url, 10.0))  # warm both sessions and the learned cost rate
        return asyncio.run(closed_loop(url, seconds))
    finally:
        stop(proc)


# ---- 2. replayed ---------------------------------------------------------------------------
def replay(service_s: list[list[float]], *, ordered: bool, seed: int) -> list[float]:
    """One simulated 30 s window of the closed loop through CoreScheduler; latencies in ms.
    ``service_s[i]``: the service times to draw from for sentence ``i``."""
    rng = random.Random(seed)
    chars = [len(s) for s in HARNESS_SENTENCES]
    rate = statistics.mean(statistics.mean(s) for s in service_s) / statistics.mean(chars)
    sched = CoreScheduler(CORES, max_queue=10 * CONC)
    counter, tickets = itertools.count(rng.randrange(len(chars))), itertools.count(1)
    arrived: dict[int, tuple[float, int]] = {}
    done: list[tuple[float, int]] = []  # (finish time, ticket)
    latencies: list[float] = []

    def begin(ticket: int, now: float) -> None:
        heapq.heappush(done, (now + rng.choice(service_s[arrived[ticket][1]]), ticket))

    def arrive(now: float) -> None:
        ticket, i = next(tickets), next(counter) % len(chars)
        arrived[ticket] = (now, i)
        admit, _ = sched.submit(ticket, now=now, cost=chars[i] * rate if ordered else 0.0)
        if admit is Admit.RUN:
            begin(ticket, now)

    for _ in range(CONC):
        arrive(0.0)
    while done:
        now, ticket = heapq.heappop(done)
        if now > WARMUP_S + WINDOW_S:
            break
        t_arrived, _ = arrived.pop(ticket)
        if t_arrived >= WARMUP_S:
            latencies.append(1000 * (now - t_arrived))
        for grant in sched.release(ticket, now=now):
            begin(grant.ticket, now)
        arrive(now)
    return latencies


def replay_rows(samples: list[Sample], windows: int) -> list[tuple[str, float, float, float]]:
    """(name, median p50, median p99/p50, 90th percentile of p99/p50) over simulated windows."""
    per: list[list[float]] = [[] for _ in HARNESS_SENTENCES]
    for s in samples:
        per[s.sentence].append(s.synth_ms / 1000)
    means = [[statistics.mean(xs)] for xs in per]
    rows = []
    for label, service in (("lengths only", means), ("+ per-request noise", per)):
        for order, ordered in (("latest start", True), ("FIFO", False)):
            runs = [ratio(replay(service, ordered=ordered, seed=k)) for k in range(windows)]
            rs = sorted(r[2] for r in runs)
            rows.append((f"replayed, {label}, {order}", statistics.median(r[0] for r in runs),
                         statistics.median(rs), rs[int(0.9 * (len(rs) - 1))]))
    return rows


# ---- report --------------------------------------------------------------------------------
def plot(samples: list[Sample], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    top.scatter([s.sent_at for s in samples], [s.latency_ms for s in samples], s=6)
    p50, p99, _ = ratio([s.latency_ms for s in samples])
    top.axhline(p50, color="grey", linestyle="--", label=f"p50 {p50:.0f} ms")
    top.axhline(p99, color="red", linestyle="--", label=f"p99 {p99:.0f} ms")
    top.set_ylabel("latency ms (client)")
    top.legend(loc="upper right")
    top.set_title("piper worker, concurrency 8, closed loop")
    edges = _five_second_means(samples)
    bottom.step([e[0] for e in edges], [e[1] for e in edges], where="post")
    bottom.set_ylabel("mean synthesis ms per 5 s")
    bottom.set_xlabel("seconds since the load started")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def _five_second_means(samples: list[Sample]) -> list[tuple[float, float, float]]:
    """(window start, mean synthesis ms, mean latency ms) per 5 s of send time."""
    out = []
    for k in itertools.count():
        w = [s for s in samples if 5 * k <= s.sent_at < 5 * (k + 1)]
        if not w:
            return out
        out.append((5.0 * k, statistics.mean(s.synth_ms for s in w), statistics.mean(s.latency_ms for s in w)))
    return out


def report(samples: list[Sample], rows: list[tuple[str, float, float, float]], args: argparse.Namespace,
           load_before: float) -> str:
    lines = [
        "# Tail latency at concurrency 8: scheduler vs machine",
        "",
        f"Command: `.venv/bin/python benchmarks/tail.py --seconds {args.seconds:g} --windows {args.windows}`",
        "",
        f"Machine: {os.cpu_count()} cores; 1-minute load average before the run: {load_before:.2f}. "
        f"Piper worker (all cores), {CONC} clients in a closed loop over the peers harness's "
        f"{len(HARNESS_SENTENCES)} sentences; p99 by nearest rank over each {WINDOW_S:g} s window, as the harness. "
        "How the rows are made: the module docstring of `benchmarks/tail.py`.",
        "",
        "| source | p50 ms | p99/p50 (median of windows) | p99/p50 (90th pct of windows) |",
        "|---|---|---|---|",
    ]
    measured = []
    n_windows = int(args.seconds // WINDOW_S)
    for k in range(n_windows):
        w = [s.latency_ms for s in samples if k * WINDOW_S <= s.sent_at < (k + 1) * WINDOW_S]
        measured.append(ratio(w))
    ms = sorted(m[2] for m in measured)
    lines.append(f"| measured ({n_windows} windows: {', '.join(f'{m[2]:.3f}' for m in measured)}) | "
                 f"{statistics.median(m[0] for m in measured):.0f} | {statistics.median(ms):.3f} | "
                 f"{ms[int(0.9 * (len(ms) - 1))]:.3f} |")
    for name, p50, med, p90 in rows:
        lines.append(f"| {name} ({args.windows} windows) | {p50:.0f} | {med:.3f} | {p90:.3f} |")
    synth = [s.synth_ms for s in samples]
    per = {}
    for s in samples:
        per.setdefault(s.sentence, []).append(s.synth_ms)
    cv = statistics.median(statistics.pstdev(xs) / statistics.mean(xs) for xs in per.values())
    lines += [
        "",
        f"Synthesis per request (worker's Server-Timing, one core each): median {statistics.median(synth):.0f} ms; "
        f"the same sentence varies by {100 * cv:.1f} % (median coefficient of variation over the sentences); "
        f"sentence means span {min(statistics.mean(x) for x in per.values()):.0f}-"
        f"{max(statistics.mean(x) for x in per.values()):.0f} ms.",
        "",
        "Per 5 s of the measured run (the machine's speed over time):",
        "",
        "| from s | mean synthesis ms | mean latency ms |",
        "|---|---|---|",
    ]
    lines += [f"| {t:.0f} | {sy:.0f} | {lat:.0f} |" for t, sy, lat in _five_second_means(samples)]
    lines += ["", "![latency and synthesis time over the run](tail.png)", ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=120.0, help="measured load, after a 3 s warm-up")
    ap.add_argument("--windows", type=int, default=200, help="simulated 30 s windows per replayed row")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/reports/tail.md")
    args = ap.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as d:
        print(f"measuring {args.seconds:g} s at concurrency {CONC}...", file=sys.stderr, flush=True)
        samples = measure(args.seconds, Path(d) / "worker.log")
    print("replaying through CoreScheduler...", file=sys.stderr, flush=True)
    rows = replay_rows(samples, args.windows)
    text = report(samples, rows, args, load_before)
    plot(samples, args.out.with_suffix(".png"))
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
