"""Raw in-process throughput of a *voxmesh* engine, shaped like the harness's raw_bench.py.

Each process (spawn) loads its own engine with ``--threads`` intra-op threads, warms up on
two sentences, waits on a barrier, then synthesizes the harness's 20 sentences ``--rounds``
times, each to WAV bytes in memory (int16, as the worker returns). Same output line as
raw_bench.py, so the report treats both alike. Runs in the project's venv.

usage: .venv/bin/python benchmarks/peers/raw_engine.py --engine piper --procs 1 --threads 2 --rounds 2
    --harness DIR   folder with the harness's common.py (for SENTENCES)
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing as mp
import os
import statistics
import sys
import time
import wave
from typing import Any

HZ = os.sysconf("SC_CLK_TCK")
VOICE = {"piper": "joe", "kokoro": "jf_alpha"}


def busy_cpu_s() -> float:
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / HZ


def make_engine(name: str) -> Any:
    if name == "piper":
        from voxmesh.engines.piper import PiperEngine

        return PiperEngine()
    if name == "kokoro":
        from voxmesh.engines.kokoro import KokoroEngine

        return KokoroEngine()
    raise SystemExit(f"unknown engine {name!r}")


def synth_wav(engine: Any, text: str, threads: int) -> tuple[bytes, float]:
    import numpy as np

    from voxmesh.engines.base import Segment, Span, VoiceMix

    seg = Segment((Span(text),), "en")
    pcm = engine.synthesize_segment(seg, VoiceMix.single(VOICE[engine.name]), 1.0, threads=threads)
    rate = engine.capabilities().sample_rate
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(pcm, -1.0, 1.0) * 32767).astype("<i2").tobytes())
    return buf.getvalue(), len(pcm) / float(rate)


def worker(idx: int, a: argparse.Namespace, barrier: Any, q: Any) -> None:
    sys.path.insert(0, a.harness)
    from common import SENTENCES

    t0 = time.perf_counter()
    eng = make_engine(a.engine)
    eng.load(a.threads)
    load_s = time.perf_counter() - t0
    for t in SENTENCES[:2]:
        synth_wav(eng, t, a.threads)
    barrier.wait()
    b0 = busy_cpu_s()
    start = time.time()
    audio = 0.0
    lat = []
    cpu0 = time.process_time()
    for _ in range(a.rounds):
        for t in SENTENCES:
            s = time.perf_counter()
            _, sec = synth_wav(eng, t, a.threads)
            lat.append(time.perf_counter() - s)
            audio += sec
    q.put(dict(idx=idx, start=start, end=time.time(), b0=b0, b1=busy_cpu_s(), audio=audio, lat=lat,
               load_s=load_s, cpu_s=time.process_time() - cpu0))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", default="piper")
    ap.add_argument("--procs", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--harness", default=os.getcwd())
    a = ap.parse_args()
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(a.procs)
    q = ctx.Queue()
    ps = [ctx.Process(target=worker, args=(i, a, barrier, q)) for i in range(a.procs)]
    for p in ps:
        p.start()
    res = [q.get() for _ in ps]
    for p in ps:
        p.join()
    wall = max(r["end"] for r in res) - min(r["start"] for r in res)
    audio = sum(r["audio"] for r in res)
    lat = sorted(x for r in res for x in r["lat"])
    busy = max(r["b1"] for r in res) - min(r["b0"] for r in res)
    mine = sum(r["cpu_s"] for r in res)
    print(json.dumps(dict(
        engine=a.engine, procs=a.procs, intra=a.threads, spin="voxmesh", rounds=a.rounds,
        n_utts=len(lat), audio_s=round(audio, 2), wall_s=round(wall, 2),
        audio_s_per_s=round(audio / wall, 2), utt_per_s=round(len(lat) / wall, 2),
        lat_mean_s=round(statistics.mean(lat), 3), lat_p50_s=round(lat[len(lat) // 2], 3),
        lat_max_s=round(lat[-1], 3), load_s=[round(r["load_s"], 2) for r in res],
        proc_cpu_s=[round(r["cpu_s"], 1) for r in res],
        busy_cpu_s=round(busy, 1), foreign_cpu_s=round(busy - mine, 2),
    )))


if __name__ == "__main__":
    main()
