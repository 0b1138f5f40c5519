"""Where a served request's CPU goes, per worker thread, at each concurrency (issue 18).

Starts ``voxmesh worker --engine piper`` (the peers config ``vox-piper``), drives it with a
closed loop of the harness's 20 sentences at each level in rotation, and reads between the
window's edges:

* requests done, req/s;
* CPU-s per request of the worker's threads, from ``/proc/PID/task/*/stat``: the event loop
  (the main thread), the inference pool (the two busiest other threads) and the rest;
* the grant counters from ``/metrics`` (how many segments ran on 1 thread / all);
* ``--env`` NAME=VALUE pairs (repeatable) start the worker with settings changed, so two
  variants can be compared side by side in one run (``--variants``).

    .venv/bin/python benchmarks/cpu_probe.py --conc 2,8 --window 15 --rounds 2

Not a timed test: compare rows within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sentences import HARNESS_SENTENCES

ROOT = Path(__file__).resolve().parents[1]
TICK = os.sysconf("SC_CLK_TCK")


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds per thread (``comm:tid``) of ``pid``."""
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[f"{name}:{task.name}"] = (int(fields[11]) + int(fields[12])) / TICK
    return out


def grants(text: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(("voxmesh_worker_segment_threads_total", "voxmesh_worker_segment_preemptions_total")):
            key, _, value = line.rpartition(" ")
            found[key] = float(value)
    return found


async def window(url: str, conc: int, seconds: float, warmup: float) -> tuple[int, list[float]]:
    done = 0
    lat: list[float] = []
    stop = time.monotonic() + warmup + seconds
    t_measure = time.monotonic() + warmup

    async def client(i: int) -> None:
        nonlocal done
        k = i * 3
        async with aiohttp.ClientSession() as s:
            while time.monotonic() < stop:
                body = {"model": "tts-en", "voice": "joe", "response_format": "wav",
                        "input": HARNESS_SENTENCES[k % len(HARNESS_SENTENCES)]}
                k += 1
                t0 = time.monotonic()
                async with s.post(url, json=body) as r:
                    await r.read()
                    assert r.status == 200, r.status
                t1 = time.monotonic()
                if t_measure <= t1 <= stop:  # completions inside the window, as the harness counts
                    done += 1
                    lat.append(t1 - t0)

    await asyncio.gather(*(client(i) for i in range(conc)))
    return done, lat


async def measure(port: int, pid: int, conc: int, seconds: float, warmup: float) -> dict[str, object]:
    url = f"http://127.0.0.1:{port}/v1/audio/speech"
    async with aiohttp.ClientSession() as s:
        g0 = grants(await (await s.get(f"http://127.0.0.1:{port}/metrics")).text())
    task = asyncio.create_task(window(url, conc, seconds, warmup))
    await asyncio.sleep(warmup)
    c0, t0 = thread_cpu(pid), time.monotonic()
    await asyncio.sleep(seconds)
    c1, t1 = thread_cpu(pid), time.monotonic()
    done, lat = await task
    async with aiohttp.ClientSession() as s:
        g1 = grants(await (await s.get(f"http://127.0.0.1:{port}/metrics")).text())
    cpu = {k: c1[k] - c0.get(k, 0.0) for k in c1}
    lat.sort()
    return dict(conc=conc, done=done, rps=done / (t1 - t0), p50=lat[len(lat) // 2] if lat else 0.0,
                cpu=cpu, grants={k.split("{", 1)[1]: g1[k] - g0.get(k, 0.0) for k in g1 if g1[k] != g0.get(k, 0.0)})


def start_worker(port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "voxmesh", "worker", "--engine", "piper", "--model", "tts-en",
           "--port", str(port), "--threads", "2"]
    return subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def ready(port: int, timeout: float = 60.0) -> None:
    t_end = time.monotonic() + timeout
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < t_end:
            try:
                async with s.get(f"http://127.0.0.1:{port}/readyz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise TimeoutError("worker not ready")


def parse_variants(specs: list[str]) -> list[tuple[str, dict[str, str]]]:
    """``name:K=V,K=V`` -> (name, env); ``base`` alone: no change."""
    out = []
    for spec in specs:
        name, _, rest = spec.partition(":")
        env = dict(kv.split("=", 1) for kv in rest.split(",") if kv)
        out.append((name, env))
    return out


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--conc", default="2,8")
    ap.add_argument("--window", type=float, default=15.0)
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--variants", nargs="*", default=["base"],
                    help="name[:ENV=V,...] workers started side by side (one at a time is measured)")
    args = ap.parse_args()
    levels = [int(c) for c in args.conc.split(",")]
    variants = parse_variants(args.variants)
    procs = {name: (8111 + i, start_worker(8111 + i, env)) for i, (name, env) in enumerate(variants)}
    try:
        for port, _p in procs.values():
            await ready(port)
        print("variant | round | conc | done | req/s | p50 ms | infer CPU-s/req | loop CPU-s/req | other | grants")
        for rnd in range(args.rounds):
            for conc in levels:
                for name, (port, proc) in procs.items():
                    r = await measure(port, proc.pid, conc, args.window, args.warmup)
                    cpu = r["cpu"]
                    assert isinstance(cpu, dict)
                    n = max(1, int(r["done"]))  # type: ignore[call-overload]
                    loop = sum(v for k, v in cpu.items() if k.endswith(f":{proc.pid}"))
                    rest = sorted((v for k, v in cpu.items() if not k.endswith(f":{proc.pid}")), reverse=True)
                    infer = sum(rest[:2])  # the inference pool: the two busiest threads besides the loop
                    other = sum(rest[2:])
                    print(f"{name} | {rnd} | {conc} | {r['done']} | {r['rps']:.2f} | {float(r['p50']) * 1000:.0f} | "
                          f"{infer / n:.3f} | {loop / n:.3f} | {other / n:.3f} | {r['grants']} | "
                          f"{sorted((round(v, 2) for v in cpu.values() if v > 0.05), reverse=True)}", flush=True)
    finally:
        for _port, p in procs.values():
            p.terminate()
        for _port, p in procs.values():
            p.wait(10)
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
