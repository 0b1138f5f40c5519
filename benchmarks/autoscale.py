"""Cold start vs warm-pool promotion, per engine, with real worker processes.

For each engine a stack runs one serving replica; the benchmark asks the supervisor for a
second one and times, from that decision:
  routable : the replica is SERVING (the gateway got its ``Add``),
  answered : the new replica has answered its first real request (speech or translation).
Cold: no warm pool, so the decision spawns a process that loads the model. Warm: a warm
pool of one, so the decision only promotes an already loaded replica. Then the simulator's
comparison table for the festival spike is appended (see benchmarks/autoscale_sim.py).

    .venv/bin/python benchmarks/autoscale.py --engines piper kokoro llamacpp --repeats 3
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

from voxmesh.autoscale.lifecycle import ReplicaState  # noqa: E402
from voxmesh.deployments import DeploymentsConfig  # noqa: E402
from voxmesh.settings import load_settings  # noqa: E402
from voxmesh.stack import Stack  # noqa: E402

KIND = {"piper": "tts", "kokoro": "tts", "llamacpp": "mt", "tone": "tts"}


async def first_answer(stack: Stack, rep: Any, engine: str) -> None:
    sup = stack.supervisor
    base = f"{sup.launch.scheme}://127.0.0.1:{rep.port}"
    if KIND[engine] == "mt":
        path, body = "/translate", {"q": "Good morning.", "source": "en", "target": "zh"}
    else:
        voice = stack.catalog.voices.get(engine, [{"id": "default"}])[0]["id"]
        path, body = "/v1/audio/speech", {"model": engine, "input": "Hello.", "voice": voice, "response_format": "pcm"}
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(timeout=timeout) as session, session.post(
        base + path, json=body, ssl=sup.ssl
    ) as resp:
        await resp.read()
        if resp.status != 200:
            raise RuntimeError(f"{engine}: first request answered {resp.status}")


async def one(engine: str, warm: int, tmp: Path) -> dict[str, float]:
    cfg = DeploymentsConfig.model_validate({"deployments": [{
        "name": engine, "engine": engine, "threads": os.cpu_count() or 2,
        "replicas": {"min": 1, "max": 2, "warm": warm},
        "scaling": {"in_flight_per_replica": 1000, "sync_period_s": 3600},  # the benchmark decides
    }]})
    settings = load_settings(None, data_dir=tmp, server={"port": 0})
    stack = Stack(settings, cfg)
    await stack.start()
    try:
        sup = stack.supervisor
        while len(sup.warm(engine)) < warm:
            await asyncio.sleep(0.05)
        before = set(r.id for r in sup.serving(engine))
        t0 = time.monotonic()
        sup.scale(engine, 2, reason="benchmark")
        while len(sup.serving(engine)) < 2:
            await asyncio.sleep(0.005)
        routable = time.monotonic() - t0
        new = next(r for r in sup.serving(engine) if r.id not in before)
        assert new.state is ReplicaState.SERVING
        await first_answer(stack, new, engine)
        answered = time.monotonic() - t0
        return {"routable_s": routable, "answered_s": answered}
    finally:
        await stack.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engines", nargs="+", default=["piper", "kokoro", "llamacpp"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/reports/autoscale.md")
    args = ap.parse_args()
    load_before = os.getloadavg()[0]
    rows = []
    for engine in args.engines:
        res: dict[str, list[dict[str, float]]] = {"cold": [], "warm": []}
        for i in range(args.repeats):
            for mode, warm in (("cold", 0), ("warm", 1)):
                with tempfile.TemporaryDirectory() as d:
                    r = asyncio.run(one(engine, warm, Path(d)))
                res[mode].append(r)
                print(f"{engine} {mode} #{i + 1}: {r}", file=sys.stderr, flush=True)
        med = {m: {k: statistics.median(x[k] for x in v) for k in v[0]} for m, v in res.items()}
        rows.append((engine, med))
    lines = [
        "# Scale-up: cold start vs warm-pool promotion",
        "",
        f"Command: `.venv/bin/python benchmarks/autoscale.py --engines {' '.join(args.engines)} --repeats {args.repeats}`",
        f"Median of {args.repeats} runs per cell; 1-minute load average before the run: {load_before:.2f} "
        f"({os.cpu_count()} cores). Times from the scale-up decision.",
        "",
        "| engine | cold: routable s | cold: first answer s | warm: routable s | warm: first answer s | speed-up (first answer) |",
        "|---|---|---|---|---|---|",
    ]
    for engine, med in rows:
        c, w = med["cold"], med["warm"]
        lines.append(f"| {engine} | {c['routable_s']:.2f} | {c['answered_s']:.2f} | {w['routable_s']:.4f} | "
                     f"{w['answered_s']:.3f} | {c['answered_s'] / w['answered_s']:.0f}x |")
    sim = ROOT / "benchmarks/reports/autoscale_sim.md"
    if sim.exists():
        lines += ["", "## Simulated festival spike (from benchmarks/reports/autoscale_sim.md)", "",
                  sim.read_text().split("\n", 1)[1].strip()]
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
