"""Benchmark: translation quality (chrF) and speed of the llama.cpp MT engine.

Three parts, each optional:

* ``quality``: the project's test sets (tests/data/mt/en_zh.tsv, zh_en.tsv), temperature 0, one
  row per prompt style (few-shot, chat template, raw HY-MT instruction); corpus chrF from
  sacrebleu.
* ``speed``: closed-loop clients at concurrency 1, 4 and 16, each sending one en->zh sentence
  per request (sentences cycle through the test set), temperature 0. Rows: the engine unbatched
  (``max_batch_size=1``: one sequence at a time, what llama-cpp-python's ``Llama`` does) and
  batched (several sequences per ``llama_decode``); sentences/s, p50 and p99 latency, and the
  batched/unbatched ratio.
* ``http``: the same load through an HTTP worker (a separate process serving
  ``voxmesh.api.translate`` routes over the same engine, ``POST /v1/translations``), plus time to
  first token with ``stream: true``.

* ``gateway``: the same HTTP load through voxmesh's gateway data plane
  (:class:`voxmesh.gateway.dataplane.DataPlane`: P2C, retries, breakers, golden metrics) in front
  of that worker, run in the benchmark's own event loop (the client shares its process; the
  gateway's cost per request is ~0.2 ms of CPU against seconds of translation).

Usage: ``.venv/bin/python benchmarks/mt.py [quality] [speed] [http] [gateway] [--threads N]
[--report benchmarks/reports/mt.md]``. Runs on whatever cores it gets; the report records the
load average, since other processes on a shared machine change the numbers a lot.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from voxmesh.engines.llamacpp import LlamaCppEngine  # noqa: E402
from voxmesh.mt.prompts import GREEDY, PromptStyle  # noqa: E402

DATA = ROOT / "tests" / "data" / "mt"


def load_pairs(name: str) -> list[tuple[str, str]]:
    rows = []
    for line in (DATA / name).read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            src, ref = line.split("\t")
            rows.append((src, ref))
    return rows


def chrf(hyps: list[str], refs: list[str]) -> float:
    import sacrebleu

    return float(sacrebleu.corpus_chrf(hyps, [refs]).score)


def evaluate(engine: LlamaCppEngine, style: PromptStyle | None = None) -> dict[str, tuple[float, float, list[str]]]:
    """chrF per direction: ``{"en-zh": (chrF, seconds, hypotheses), ...}``."""
    if style is not None:
        engine.style = style
    out = {}
    for name, src, tgt in (("en_zh.tsv", "en", "zh"), ("zh_en.tsv", "zh", "en")):
        pairs = load_pairs(name)
        t0 = time.perf_counter()
        hyps = engine.translate([s for s, _ in pairs], src, tgt, params=GREEDY)
        assert isinstance(hyps, list)
        out[f"{src}-{tgt}"] = (chrf(hyps, [r for _, r in pairs]), time.perf_counter() - t0, hyps)
    return out


# ---- speed ----------------------------------------------------------------------------------


@dataclass
class Run:
    label: str
    concurrency: int
    n: int
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.n / self.seconds

    def pct(self, q: float) -> float:
        xs = sorted(self.latencies)
        return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


async def closed_loop(label: str, call: Callable[[str], Awaitable[object]], sentences: list[str],
                      concurrency: int, total: int) -> Run:
    lat: list[float] = []
    counter = iter(range(total))

    async def client() -> None:
        for i in counter:
            t = time.perf_counter()
            await call(sentences[i % len(sentences)])
            lat.append(time.perf_counter() - t)

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return Run(label, concurrency, total, time.perf_counter() - t0, lat)


def engine_runs(batch_sizes: list[int], concurrencies: list[int], threads: int, per_run: int,
                prefix_slots: int = 4) -> list[Run]:
    sentences = [s for s, _ in load_pairs("en_zh.tsv")]
    runs = []
    for bs in batch_sizes:
        engine = LlamaCppEngine(max_batch_size=bs, max_wait_s=0.005, prefix_slots=prefix_slots)
        engine.load(threads)
        engine.translate(sentences[:2], "en", "zh", params=GREEDY)  # warm: caches the prompt head

        async def call(text: str, engine: LlamaCppEngine = engine) -> object:
            return await engine.atranslate([text], "en", "zh", params=GREEDY)

        for c in concurrencies:
            n = max(per_run, 2 * c)
            label = f"engine, max_batch_size={bs}" + ("" if prefix_slots else ", no prompt-head cache")
            run = asyncio.run(closed_loop(label, call, sentences, c, n))
            print(f"  {run.label:32s} c={c:2d}  {run.rate:5.2f} sent/s  p50 {run.pct(.5):5.2f}s  "
                  f"p99 {run.pct(.99):5.2f}s", flush=True)
            runs.append(run)
        engine.close()
    return runs


# ---- HTTP worker ------------------------------------------------------------------------------


def serve_worker(port: int, threads: int, batch: int) -> None:
    """Child process: the translate routes over an in-process engine (what an MT worker serves)."""
    from aiohttp import web

    from voxmesh.api.translate import setup_translate_routes
    from voxmesh.mt.service import InProcessTranslator

    engine = LlamaCppEngine(max_batch_size=batch)
    engine.load(threads)
    engine.translate(["Good morning."], "en", "zh", params=GREEDY)
    app = web.Application()
    setup_translate_routes(app, InProcessTranslator(engine))
    print("READY", flush=True)
    web.run_app(app, host="127.0.0.1", port=port, print=None, handle_signals=True)


async def gateway_runs(worker_url: str, concurrencies: list[int], per_run: int) -> tuple[list[Run], list[float]]:
    from aiohttp import web

    from voxmesh.gateway.balancer.pool import Endpoint, Reset
    from voxmesh.gateway.dataplane import DataPlane
    from voxmesh.settings import GatewaySettings

    dp = DataPlane(GatewaySettings())
    await dp.start()
    dp.update("mt", Reset([Endpoint("mt-0", worker_url)]))

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        return await dp.forward(request, model="mt", path=request.path_qs, body=body)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        return await http_runs(f"http://127.0.0.1:{port}", "HTTP worker via gateway data plane", concurrencies,
                               per_run)
    finally:
        await runner.cleanup()
        await dp.close()


async def http_runs(url: str, label: str, concurrencies: list[int], per_run: int) -> tuple[list[Run], list[float]]:
    import aiohttp

    sentences = [s for s, _ in load_pairs("en_zh.tsv")]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as http:

        async def call(text: str) -> object:
            async with http.post(url + "/v1/translations",
                                 json={"input": text, "source": "en", "target": "zh", "temperature": 0}) as r:
                body = await r.json()
                if r.status != 200:
                    raise RuntimeError(body)
                return body

        runs = []
        for c in concurrencies:
            run = await closed_loop(label, call, sentences, c, max(per_run, 2 * c))
            print(f"  {run.label:32s} c={c:2d}  {run.rate:5.2f} sent/s  p50 {run.pct(.5):5.2f}s  "
                  f"p99 {run.pct(.99):5.2f}s", flush=True)
            runs.append(run)
        ttft = []
        for text in sentences[:8]:
            t = time.perf_counter()
            async with http.post(url + "/v1/translations", json={"input": text, "source": "en", "target": "zh",
                                                                 "temperature": 0, "stream": True}) as r:
                async for line in r.content:
                    if line.startswith(b"event: piece"):
                        ttft.append(time.perf_counter() - t)
                        break
                await r.read()
    return runs, ttft


def start_worker(threads: int, batch: int, port: int = 18931) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, __file__, "--serve-worker", str(port), "--threads", str(threads),
                             "--worker-batch", str(batch)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip() == "READY":
            break
    time.sleep(0.3)
    return proc, f"http://127.0.0.1:{port}"


# ---- report -------------------------------------------------------------------------------------


def speed_table(runs: list[Run], base_label: str) -> list[str]:
    base = {r.concurrency: r.rate for r in runs if r.label == base_label}
    lines = ["| path | concurrency | sentences/s | p50 (s) | p99 (s) | vs unbatched |", "|---|---|---|---|---|---|"]
    for r in runs:
        ratio = r.rate / base[r.concurrency] if r.concurrency in base else float("nan")
        lines.append(f"| {r.label} | {r.concurrency} | {r.rate:.2f} | {r.pct(.5):.2f} | {r.pct(.99):.2f} | "
                     f"{ratio:.2f}x |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("parts", nargs="*", default=["quality", "speed", "http", "gateway"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-sizes", default="1,8")
    ap.add_argument("--concurrency", default="1,4,16")
    ap.add_argument("--per-run", type=int, default=24)
    ap.add_argument("--styles", default="fewshot,chat,hymt")
    ap.add_argument("--json", type=Path, default=None, help="also write raw results here")
    ap.add_argument("--serve-worker", type=int, default=None)
    ap.add_argument("--worker-batch", type=int, default=8)
    ap.add_argument("--prefix-slots", type=int, default=4, help="0 disables the prompt-head KV cache")
    args = ap.parse_args()
    if args.serve_worker:
        serve_worker(args.serve_worker, args.threads, args.worker_batch)
        return
    conc = [int(c) for c in args.concurrency.split(",")]
    batches = [int(b) for b in args.batch_sizes.split(",")]
    results: dict[str, object] = {"machine": platform.platform(), "cpus": os.cpu_count(),
                                  "loadavg_start": os.getloadavg(), "threads": args.threads}
    if "quality" in args.parts:
        engine = LlamaCppEngine(max_batch_size=8)
        engine.load(args.threads)
        q = {}
        for style in args.styles.split(","):
            res = evaluate(engine, PromptStyle(style))
            q[style] = {k: {"chrf": round(v[0], 1), "seconds": round(v[1], 1), "samples": v[2][:5]}
                        for k, v in res.items()}
            print(style, {k: v["chrf"] for k, v in q[style].items()}, flush=True)
        engine.close()
        results["quality"] = q
    runs: list[Run] = []
    if "speed" in args.parts:
        runs += engine_runs(batches, conc, args.threads, args.per_run, args.prefix_slots)
    if "http" in args.parts or "gateway" in args.parts:
        proc, url = start_worker(args.threads, args.worker_batch)
        try:
            if "http" in args.parts:
                hr, ttft = asyncio.run(http_runs(url, f"HTTP worker, max_batch_size={args.worker_batch}", conc,
                                                 args.per_run))
                runs += hr
                results["ttft_s"] = {"p50": statistics.median(ttft), "max": max(ttft), "n": len(ttft)}
                print(f"  time to first token (stream, c=1): p50 {statistics.median(ttft):.2f}s "
                      f"max {max(ttft):.2f}s")
            if "gateway" in args.parts:
                gr, gttft = asyncio.run(gateway_runs(url, conc, args.per_run))
                runs += gr
                results["ttft_gateway_s"] = {"p50": statistics.median(gttft), "max": max(gttft), "n": len(gttft)}
                print(f"  time to first token via gateway: p50 {statistics.median(gttft):.2f}s")
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    if runs:
        results["speed"] = [{"label": r.label, "concurrency": r.concurrency, "n": r.n, "rate": r.rate,
                             "p50": r.pct(.5), "p99": r.pct(.99)} for r in runs]
        print("\n".join(speed_table(runs, "engine, max_batch_size=1")))
    results["loadavg_end"] = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps(results, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
