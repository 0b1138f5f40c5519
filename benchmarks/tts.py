"""TTS throughput raw vs served, and time to first audio of a streamed paragraph.

For each engine, in ONE run on the same texts:
  raw   : the synthesis pipeline in this process (plan + render, no HTTP), one request at a
          time with all cores (wide session) and two at a time with one core each (narrow);
  worker: a ``voxmesh worker`` subprocess (plain HTTP on loopback), same concurrency;
  api   : the public API of ``voxmesh up`` (gateway -> mTLS -> worker), same concurrency.
Throughput is audio seconds produced per wall second; the targets are served >= 0.95x raw.
Then, at concurrency 1, each sentence is sent raw, to the worker and to the API back to back
(paired: a slow period of the VM hits all three alike), which measures the served path's own
cost per request more finely than throughput windows minutes apart can. Last, a
~1,000-character paragraph is streamed through the API and its time to first audio byte is
compared with the time to synthesize its first sentence alone (target <= 1.2x), the two
alternating and each after the same idle pause.

    .venv/bin/python benchmarks/tts.py --engines piper --reps 6 --rounds 1 --out benchmarks/reports/tts.md
    .venv/bin/python benchmarks/tts.py --engines kokoro --reps 6 --sentences 10 --out benchmarks/reports/tts_kokoro.md
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from voxmesh.api.schemas import SpeechRequest  # noqa: E402
from voxmesh.engines.registry import create_engine  # noqa: E402
from voxmesh.text.pronunciation import PronunciationDictionary  # noqa: E402
from voxmesh.worker.synthesis import plan_speech, render_all  # noqa: E402

VOICES = {"piper": "joe", "kokoro": None}
PARAGRAPH = (
    "The old lighthouse stood at the edge of the cliff for more than two hundred years. "
    "Every night its lamp swept across the dark water, warning ships away from the rocks below. "
    "The keeper climbed the narrow stairs at dusk, trimmed the wick, and polished the great lens "
    "until it gleamed. Storms came and went, and sometimes the waves rose so high that spray "
    "reached the gallery at the top of the tower. In the morning, the keeper wrote down the "
    "weather, the ships he had seen, and anything unusual that happened during the night. "
    "When the lamp was finally automated, the village held a small ceremony, and the last keeper "
    "handed his logbooks to the museum, where visitors still read them today. Children press "
    "their noses to the glass case and try to imagine the long, lonely nights by the sea."
)


def texts() -> list[str]:
    lines = (ROOT / "tests/data/tts/en_sentences.txt").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")][:20]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 300) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return time.monotonic() - t0
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready after {timeout}s")


# ---- raw ---------------------------------------------------------------------------------
def raw_throughput(engine: Any, voice: str, items: list[str], concurrency: int) -> dict[str, float]:
    dictionary = PronunciationDictionary.default()
    threads = (os.cpu_count() or 2) if concurrency == 1 else 1
    audio = [0.0]
    lats: list[float] = []
    lock = threading.Lock()
    queue = list(items)

    def work() -> None:
        while True:
            with lock:
                if not queue:
                    return
                text = queue.pop(0)
            t0 = time.monotonic()
            req = SpeechRequest(model="x", input=text, voice=voice, response_format="pcm")
            plan = plan_speech(req, engine, dictionary)
            pcm = render_all(engine, plan, threads)
            with lock:
                lats.append(time.monotonic() - t0)
                audio[0] += len(pcm) / plan.sample_rate

    t0 = time.monotonic()
    ts = [threading.Thread(target=work) for _ in range(concurrency)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    wall = time.monotonic() - t0
    lats.sort()
    return {"audio_s_per_s": audio[0] / wall, "p50_ms": 1000 * lats[len(lats) // 2], "n": len(lats)}


# ---- served ------------------------------------------------------------------------------
async def served_throughput(url: str, model: str, voice: str, items: list[str], concurrency: int,
                            sample_rate: int) -> dict[str, float]:
    queue = list(items)
    audio = 0.0
    lats: list[float] = []
    async with aiohttp.ClientSession() as session:
        async def client() -> None:
            nonlocal audio
            while queue:
                text = queue.pop(0)
                body = {"model": model, "input": text, "voice": voice, "response_format": "pcm"}
                t0 = time.monotonic()
                async with session.post(url + "/v1/audio/speech", json=body) as resp:
                    data = await resp.read()
                    if resp.status != 200:
                        raise RuntimeError(f"{resp.status}: {data[:200]!r}")
                lats.append(time.monotonic() - t0)
                audio += len(data) / 2 / sample_rate
        t0 = time.monotonic()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        wall = time.monotonic() - t0
    lats.sort()
    return {"audio_s_per_s": audio / wall, "p50_ms": 1000 * lats[len(lats) // 2], "n": len(lats)}


def paired_latency(engine: Any, voice: str, items: list[str], urls: dict[str, str], model: str,
                   cores: int) -> dict[str, Any]:
    """Concurrency 1, each sentence raw then worker then API, back to back; per-path medians."""
    import http.client
    from urllib.parse import urlsplit

    dictionary = PronunciationDictionary.default()
    parts = {path: urlsplit(url) for path, url in urls.items()}
    conns = {path: http.client.HTTPConnection(u.hostname, u.port, timeout=120) for path, u in parts.items()}
    lat: dict[str, list[float]] = {"raw": [], **{path: [] for path in urls}}
    for text in items:
        t0 = time.monotonic()
        plan = plan_speech(SpeechRequest(model="x", input=text, voice=voice, response_format="pcm"), engine, dictionary)
        render_all(engine, plan, cores)
        lat["raw"].append(time.monotonic() - t0)
        body = json.dumps({"model": model, "input": text, "voice": voice, "response_format": "pcm"})
        for path, conn in conns.items():
            t0 = time.monotonic()
            conn.request("POST", "/v1/audio/speech", body, {"Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise RuntimeError(f"{path} answered {resp.status}")
            lat[path].append(time.monotonic() - t0)
    for conn in conns.values():
        conn.close()
    return {path: 1000 * statistics.median(xs) for path, xs in lat.items()} | {"n": len(items)}


async def first_byte(url: str, model: str, voice: str, text: str) -> float:
    body = {"model": model, "input": text, "voice": voice, "response_format": "pcm", "stream": True}
    async with aiohttp.ClientSession() as session:
        t0 = time.monotonic()
        async with session.post(url + "/v1/audio/speech", json=body) as resp:
            await resp.content.readany()
            ttfb = time.monotonic() - t0
            await resp.read()
    return ttfb


def start(cmd: list[str], log: Path, settings: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """``cmd`` with its output in ``log``, without this environment's VOXMESH_* variables;
    ``settings``: VOXMESH_* variables of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOXMESH_")} | (settings or {})
    with open(log, "wb") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


def _summary(windows: list[dict[str, float]], raw: list[dict[str, float]]) -> dict[str, Any]:
    """Medians of the windows, and the median of the per-rotation ratios to the raw window of
    the same rotation (measured a minute apart at most, so a slow period hits both)."""
    return {"audio_s_per_s": statistics.median([w["audio_s_per_s"] for w in windows]),
            "p50_ms": statistics.median([w["p50_ms"] for w in windows]),
            "paired_ratio": statistics.median([w["audio_s_per_s"] / r["audio_s_per_s"] for w, r in zip(windows, raw, strict=True)]),
            "windows": [round(w["audio_s_per_s"], 2) for w in windows]}


def bench_engine(name: str, rounds: int, reps: int, sentences: int, tmp: Path) -> dict[str, Any]:
    """Raw, worker and API of one engine, all three up at once and measured in rotation
    (raw c1, raw c2, worker c1, ... then again), ``reps`` times: each row is the median of
    its windows, so a noisy minute on the machine hits every row alike."""
    engine = create_engine(name, {})
    cores = os.cpu_count() or 2
    engine.load(cores)
    engine.warm_up()
    voice = VOICES[name] or engine.voices()[0].id
    rate = engine.capabilities().sample_rate
    items = texts()[:sentences] * rounds
    out: dict[str, Any] = {"engine": name, "voice": voice, "sentences": len(items), "reps": reps}
    raw_throughput(engine, voice, items[:4], 2)  # warm the narrow path too

    wport, aport = free_port(), free_port()
    cfg = tmp / f"{name}.yaml"
    cfg.write_text(json.dumps({"deployments": [{"name": name, "engine": name, "threads": cores,
                                                "replicas": {"min": 1, "max": 1, "warm": 0}}]}))
    worker = start([sys.executable, "-m", "voxmesh", "worker", "--engine", name, "--model", name,
                    "--port", str(wport), "--threads", str(cores)], tmp / f"worker-{name}.log")
    up: subprocess.Popen[bytes] | None = None
    try:
        out["worker_start_s"] = wait_http(f"http://127.0.0.1:{wport}/readyz")
        up = start([sys.executable, "-m", "voxmesh", "--config", str(cfg), "up", "--port", str(aport),
                    "--data-dir", str(tmp / f"data-{name}")], tmp / f"up-{name}.log")
        out["api_start_s"] = wait_http(f"http://127.0.0.1:{aport}/readyz")
        urls = {"worker": f"http://127.0.0.1:{wport}", "api": f"http://127.0.0.1:{aport}"}
        for url in urls.values():  # first requests and the narrow sessions' background warm-up
            asyncio.run(served_throughput(url, name, voice, items[:4], 2, rate))
        windows: dict[str, dict[int, list[dict[str, float]]]] = {p: {1: [], 2: []} for p in ("raw", *urls)}
        for rep in range(reps):
            print(f"  {name}: rotation {rep + 1}/{reps}", file=sys.stderr, flush=True)
            for c in (1, 2):
                windows["raw"][c].append(raw_throughput(engine, voice, items, c))
                for path, url in urls.items():
                    windows[path][c].append(asyncio.run(served_throughput(url, name, voice, items, c, rate)))
        for path, by_conc in windows.items():
            out[path] = {c: _summary(ws, windows["raw"][c]) for c, ws in by_conc.items()}
        # the pause lets the worker's scheduler leave one-core mode (worker.calm_s, 1 s)
        time.sleep(2.0)
        out["paired"] = paired_latency(engine, voice, items * 2, urls, name, cores)
        # first sentence alone (in process, all cores) vs first streamed byte of the paragraph,
        # alternating, each after the same idle pause: a first request after idle pays for
        # waking the inference threads (~7 % on Piper here), so both sides pay it alike
        dictionary = PronunciationDictionary.default()
        first_sentence = PARAGRAPH.split(". ")[0] + "."
        times, ttfbs = [], []
        for _ in range(5):
            time.sleep(1.5)
            t0 = time.monotonic()
            plan = plan_speech(SpeechRequest(model="x", input=first_sentence, voice=voice, response_format="pcm"),
                               engine, dictionary)
            render_all(engine, plan, cores)
            times.append(time.monotonic() - t0)
            time.sleep(1.5)
            ttfbs.append(asyncio.run(first_byte(urls["api"], name, voice, PARAGRAPH)))
        out["first_sentence_s"] = statistics.median(times)
        out["ttfb_s"] = statistics.median(ttfbs)
    finally:
        stop(worker)
        if up is not None:
            stop(up)
    return out


def report(results: list[dict[str, Any]], args: argparse.Namespace, load_before: float) -> str:
    lines = [
        "# TTS: raw engine vs served (worker, public API)",
        "",
        f"Command: `{' '.join(['.venv/bin/python', 'benchmarks/tts.py', *sys.argv[1:]])}`",
        "",
        f"Machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}; "
        f"1-minute load average before the run: {load_before:.2f}. Closed loop, pcm responses, "
        "audio seconds per wall second, the same sentences (tests/data/tts/en_sentences.txt) for every row. "
        "Raw (in this process), the worker and the public API were all up at once and measured in rotation; "
        "each row is the median of its windows (all windows listed); \"vs raw\" is the ratio of those medians, "
        "\"per rotation\" the median of each window's ratio to the raw window of its own rotation.",
        "",
        "| engine | path | conc | audio-s/s (median) | p50 ms | vs raw (same conc) | per rotation | windows audio-s/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        for path in ("raw", "worker", "api"):
            for c, m in r[path].items():
                ratio = m["audio_s_per_s"] / r["raw"][c]["audio_s_per_s"]
                lines.append(f"| {r['engine']} | {path} | {c} | {m['audio_s_per_s']:.2f} | {m['p50_ms']:.0f} | "
                             f"{ratio:.3f}x | {m['paired_ratio']:.3f}x | {', '.join(str(w) for w in m['windows'])} |")
    lines += ["", "Concurrency 1, paired: each sentence raw, then through the worker, then through the API, "
              "back to back (a slow period of the machine hits all three alike); median latency per request:", "",
              "| engine | requests per path | raw ms | worker ms | api ms | worker / raw | api / raw |",
              "|---|---|---|---|---|---|---|"]
    for r in results:
        p = r["paired"]
        lines.append(f"| {r['engine']} | {p['n']} | {p['raw']:.1f} | {p['worker']:.1f} | {p['api']:.1f} | "
                     f"{p['worker'] / p['raw']:.3f}x | {p['api'] / p['raw']:.3f}x |")
    lines += ["", "Time to first audio byte of a streamed 1,000-character paragraph (through the API) vs "
              "synthesizing its first sentence alone in process (target <= 1.2x); alternating, each after 1.5 s idle, "
              "medians of 5 each:", "",
              "| engine | first sentence alone s | streamed TTFB s | ratio | worker start s | stack start s |",
              "|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['engine']} | {r['first_sentence_s']:.3f} | {r['ttfb_s']:.3f} | "
                     f"{r['ttfb_s'] / r['first_sentence_s']:.2f}x | {r['worker_start_s']:.1f} | {r['api_start_s']:.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engines", nargs="+", default=["piper", "kokoro"])
    ap.add_argument("--rounds", type=int, default=1, help="passes over the sentences per window")
    ap.add_argument("--reps", type=int, default=5, help="rotations over raw/worker/api x conc 1/2")
    ap.add_argument("--sentences", type=int, default=20, help="how many of the 20 sentences per window")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    load_before = os.getloadavg()[0]
    results = []
    with tempfile.TemporaryDirectory() as d:
        for name in args.engines:
            print(f"benchmarking {name}...", file=sys.stderr, flush=True)
            results.append(bench_engine(name, args.rounds, args.reps, args.sentences, Path(d)))
    text = report(results, args, load_before)
    print(text)
    if args.out:
        args.out.write_text(text)
        (args.out.with_suffix(".json")).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
