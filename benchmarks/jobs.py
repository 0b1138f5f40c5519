"""Jobs throughput vs the raw engine: audio seconds produced per wall second.

Raw: the chunks of a text synthesized straight through the engine by ``--concurrency``
threads (one onnxruntime thread each), no DB, no store. Jobs: the same text submitted as a
job (JobService, SQLite file in WAL mode, filesystem object store, DB queue) and run by
``--concurrency`` runner loops whose Synthesizer calls the same engine in the same thread
pool, timed from submission until the stitched result is stored. Raw and jobs rounds
alternate so load drifts hit both. Engine: the real Piper voice (``voxmesh.engines.piper``)
or, with ``--engine fake``, the deterministic FakeSynthesizer behind a fixed 50 ms wait
(overhead only).

    .venv/bin/python benchmarks/jobs.py [--engine piper|fake] [--chunks 24] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from voxmesh.jobs.ingest import chunk_text
from voxmesh.jobs.runner import Runner
from voxmesh.jobs.synth import FakeSynthesizer, SynthResult
from voxmesh.jobs.wiring import open_jobs
from voxmesh.settings import Settings

SENTENCES = [
    "The lighthouse keeper climbed the spiral stairs every evening, counting each step out loud.",
    "Far below, the waves folded over the rocks and drew back with a long, patient sigh.",
    "She had kept the lamp burning for thirty years, through storms and calm alike.",
    "Ships she would never meet passed safely in the dark because of her small routine.",
]


class EngineSynthesizer:
    """A Synthesizer over an in-process engine, run in a shared thread pool."""

    def __init__(self, engine: Any, pool: ThreadPoolExecutor) -> None:
        self.engine = engine
        self.pool = pool
        self.rate = engine.capabilities().sample_rate

    def _run(self, text: str) -> bytes:
        from voxmesh.engines.base import Segment, Span, VoiceMix

        pcm = self.engine.synthesize_segment(Segment((Span(text),), "en"), VoiceMix.single("joe"), 1.0, threads=1)
        return (np.clip(pcm, -1, 1) * 32767).astype("<i2").tobytes()

    async def synthesize(self, text: str, *, model: str, voice: str, options: dict[str, Any]) -> SynthResult:
        data = await asyncio.get_running_loop().run_in_executor(self.pool, self._run, text)
        return SynthResult(data, self.rate)


class SleepFake:
    """FakeSynthesizer output after a fixed wait in the pool: measures the jobs machinery's own
    overhead (a busy loop would hold the GIL and serialize the pool, unlike onnxruntime)."""

    def __init__(self, pool: ThreadPoolExecutor, seconds_per_chunk: float = 0.05) -> None:
        self.fake = FakeSynthesizer(sample_rate=22050)
        self.pool = pool
        self.cost = seconds_per_chunk

    def _run(self, text: str) -> bytes:
        time.sleep(self.cost)
        return self.fake.render(text, "joe", 22050)

    async def synthesize(self, text: str, *, model: str, voice: str, options: dict[str, Any]) -> SynthResult:
        data = await asyncio.get_running_loop().run_in_executor(self.pool, self._run, text)
        return SynthResult(data, 22050)


async def raw_round(synth: Any, chunks: list[str], concurrency: int) -> tuple[float, float]:
    sem = asyncio.Semaphore(concurrency)
    audio = 0.0

    async def one(text: str) -> None:
        nonlocal audio
        async with sem:
            res = await synth.synthesize(text, model="m", voice="joe", options={})
            audio += res.seconds

    start = time.perf_counter()
    await asyncio.gather(*(one(c) for c in chunks))
    return audio, time.perf_counter() - start


async def jobs_round(synth: Any, text: str, concurrency: int, chunk_chars: int) -> tuple[float, float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), jobs={"chunk_chars": chunk_chars, "poll_interval_s": 0.02})
        stack = await open_jobs(settings)
        runners = [Runner(db=stack.db, store=stack.store, queue=stack.queue, synth=synth, settings=settings.jobs)
                   for _ in range(concurrency)]
        tasks = [asyncio.create_task(r.run()) for r in runners]
        start = time.perf_counter()
        job = await stack.service.create(text=text, voice="joe", model="m", options={"sample_rate": 22050})
        while (st := await stack.service.get(job.id)).state not in ("succeeded", "failed"):
            await asyncio.sleep(0.01)
        wall = time.perf_counter() - start
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await stack.close()
        assert st.state == "succeeded", st.error
        return float(st.duration_s or 0.0), wall, st.chunks_total


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", choices=["piper", "fake"], default="piper")
    ap.add_argument("--chunks", type=int, default=24)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--concurrency", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--chunk-chars", type=int, default=200)
    args = ap.parse_args()
    pool = ThreadPoolExecutor(args.concurrency)
    synth: Any
    if args.engine == "piper":
        from voxmesh.engines.piper import PiperEngine

        engine = PiperEngine()
        engine.load(threads=1)
        engine.warm_up()
        synth = EngineSynthesizer(engine, pool)
    else:
        synth = SleepFake(pool)
    sentences = (SENTENCES * (args.chunks * 2))[: args.chunks * 2]
    # every sentence unique: the job store is content-addressed and would reuse repeats
    text = " ".join(f"Part {i + 1}. {s}" for i, s in enumerate(sentences))
    chunks = chunk_text(text, args.chunk_chars)
    await raw_round(synth, chunks[:4], args.concurrency)  # warm the pool
    rows = []
    for r in range(args.rounds):
        a_raw, w_raw = await raw_round(synth, chunks, args.concurrency)
        a_job, w_job, n = await jobs_round(synth, text, args.concurrency, args.chunk_chars)
        rows.append({"round": r, "chunks": n, "raw_audio_s": a_raw, "raw_wall_s": w_raw, "jobs_audio_s": a_job,
                     "jobs_wall_s": w_job, "raw_rate": a_raw / w_raw, "jobs_rate": a_job / w_job,
                     "ratio": (a_job / w_job) / (a_raw / w_raw)})
        print(json.dumps(rows[-1]))
    raw = sum(r["raw_audio_s"] for r in rows) / sum(r["raw_wall_s"] for r in rows)
    job = sum(r["jobs_audio_s"] for r in rows) / sum(r["jobs_wall_s"] for r in rows)
    print(json.dumps({"engine": args.engine, "concurrency": args.concurrency, "cpu": platform.processor() or platform.machine(),
                      "load_avg_1m": os.getloadavg()[0], "raw_audio_s_per_s": raw, "jobs_audio_s_per_s": job,
                      "ratio": job / raw}))
    pool.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
