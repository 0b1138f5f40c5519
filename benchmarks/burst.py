"""Bursts after idle: two requests at once at an idle worker, with and without preemption.

A lone request gets every core for its sentence. When a second one arrives right behind it
(two clients starting together, the first pair of any concurrency-2 window), the second
either waits that sentence out (``preempt_frac = 0``) or takes the cores back: the first
sentence restarts on one core and both run side by side (``preempt_frac = 0.25``, the
default). This runs both on one machine in one run:

* two ``voxmesh worker`` processes of the same engine, one per setting, started together
  (an idle worker costs no CPU);
* ``--bursts`` bursts per worker, alternating between them: wait ``--idle`` seconds (longer
  than ``worker.calm_s``, so the worker is back in all-cores mode), then send two different
  harness sentences at once (one ``asyncio.gather``);
* per burst: the makespan (first send to last byte) and both latencies; per worker, the
  medians, plus the worker's preemption count from ``/metrics``.

    .venv/bin/python benchmarks/burst.py --engines piper kokoro --bursts 20 --out benchmarks/reports/burst.md
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from sentences import HARNESS_SENTENCES  # noqa: E402
from tts import free_port, start, stop, wait_http  # noqa: E402

VOICE = {"piper": "joe", "kokoro": "default"}  # kokoro: its first voice
SETTINGS = {"off": 0.0, "on": 0.25}  # worker.preempt_frac


async def post(http: aiohttp.ClientSession, url: str, model: str, voice: str, text: str) -> float:
    body = {"model": model, "input": text, "voice": voice, "response_format": "pcm"}
    t0 = time.monotonic()
    async with http.post(url + "/v1/audio/speech", json=body) as resp:
        await resp.read()
        if resp.status != 200:
            raise RuntimeError(f"{url} answered {resp.status}")
    return time.monotonic() - t0


async def burst(url: str, model: str, voice: str, first: str, second: str) -> dict[str, float]:
    async with aiohttp.ClientSession() as http:
        t0 = time.monotonic()
        a, b = await asyncio.gather(post(http, url, model, voice, first), post(http, url, model, voice, second))
        return {"makespan_ms": 1000 * (time.monotonic() - t0), "first_ms": 1000 * a, "second_ms": 1000 * b}


async def preemptions(url: str) -> int:
    async with aiohttp.ClientSession() as http, http.get(url + "/metrics") as resp:
        for line in (await resp.text()).splitlines():
            if line.startswith("voxmesh_worker_segment_preemptions_total"):
                return int(float(line.rsplit(" ", 1)[1]))
    return 0


def bench_engine(engine: str, bursts: int, idle: float, tmp: Path) -> dict[str, Any]:
    urls: dict[str, str] = {}
    procs = []
    try:
        for name, frac in SETTINGS.items():
            port = free_port()
            cmd = [sys.executable, "-m", "voxmesh", "worker", "--engine", engine, "--model", engine,
                   "--port", str(port), "--threads", "2"]
            procs.append(start(cmd, tmp / f"{engine}-{name}.log", {"VOXMESH_WORKER__PREEMPT_FRAC": str(frac)}))
            urls[name] = f"http://127.0.0.1:{port}"
        for url in urls.values():
            wait_http(url + "/readyz")
            for text in HARNESS_SENTENCES[:2]:  # first requests + the narrow session's warm-up
                asyncio.run(burst(url, engine, VOICE[engine], text, text))
        base = {name: asyncio.run(preemptions(url)) for name, url in urls.items()}
        rows: dict[str, list[dict[str, float]]] = {name: [] for name in urls}
        n = len(HARNESS_SENTENCES)
        for i in range(bursts):
            for name, url in (urls.items() if i % 2 == 0 else reversed(urls.items())):
                time.sleep(idle)
                first, second = HARNESS_SENTENCES[(2 * i) % n], HARNESS_SENTENCES[(2 * i + 1) % n]
                rows[name].append(asyncio.run(burst(url, engine, VOICE[engine], first, second)))
            print(f"  {engine}: burst {i + 1}/{bursts}", file=sys.stderr, flush=True)
        out: dict[str, Any] = {"engine": engine, "bursts": bursts}
        for name, url in urls.items():
            out[name] = {key: statistics.median(r[key] for r in rows[name]) for key in rows[name][0]}
            out[name]["mean_latency_ms"] = statistics.median((r["first_ms"] + r["second_ms"]) / 2 for r in rows[name])
            out[name]["preemptions"] = asyncio.run(preemptions(url)) - base[name]
        return out
    finally:
        for proc in procs:
            stop(proc)


def report(results: list[dict[str, Any]], args: argparse.Namespace, load_before: float) -> str:
    lines = [
        "# Bursts after idle: preemption of a fresh all-core segment, off vs on",
        "",
        f"Command: `.venv/bin/python benchmarks/burst.py --engines {' '.join(args.engines)} --bursts {args.bursts}"
        f" --idle {args.idle} --out {args.out}`",
        "",
        f"Machine: {os.cpu_count()} cores; 1-minute load average before the run: {load_before:.2f}. Two workers "
        "(`worker.preempt_frac` 0 and 0.25), up together, bursts alternating between them; each burst is two "
        "different harness sentences sent at once after the worker has been idle for "
        f"{args.idle} s. Medians over the bursts.",
        "",
        "| engine | preemption | makespan ms | first ms | second ms | mean latency ms | preemptions / bursts |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        for name in SETTINGS:
            m = r[name]
            lines.append(f"| {r['engine']} | {name} ({SETTINGS[name]}) | {m['makespan_ms']:.0f} | {m['first_ms']:.0f} | "
                         f"{m['second_ms']:.0f} | {m['mean_latency_ms']:.0f} | {m['preemptions']} / {r['bursts']} |")
    lines.append("")
    for r in results:
        off, on = r["off"], r["on"]
        lines.append(f"- {r['engine']}: makespan {on['makespan_ms'] / off['makespan_ms']:.2f}x, mean latency "
                     f"{on['mean_latency_ms'] / off['mean_latency_ms']:.2f}x with preemption.")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engines", nargs="+", default=["piper", "kokoro"])
    ap.add_argument("--bursts", type=int, default=20)
    ap.add_argument("--idle", type=float, default=1.5)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "reports" / "burst.md"))
    args = ap.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        results = [bench_engine(e, args.bursts, args.idle, Path(tmp)) for e in args.engines]
    text = report(results, args, load_before)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
