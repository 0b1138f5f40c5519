"""Per-stage latency on a real Piper worker (in process, real HTTP on loopback).

The seeds' story: one stage is slow on purpose (``worker.fault_stage``); the stage metric and
``Server-Timing`` point at that stage while the model's own inference time stays flat."""

from __future__ import annotations

import asyncio
import statistics
import time
from concurrent.futures import Future

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from voxmesh.engines.piper import PiperEngine
from voxmesh.observability.stages import STAGES, parse_server_timing
from voxmesh.settings import WorkerSettings
from voxmesh.text.pronunciation import PronunciationDictionary
from voxmesh.worker.server import WorkerApp, build_worker_app

pytestmark = pytest.mark.slow

TEXT = "The patient listener waits for the next sentence. Then the quick brown fox jumps over the lazy dog."
DELAY_MS = 600.0


def _loaded() -> Future[None]:
    done: Future[None] = Future()
    done.set_result(None)
    return done


async def _timings(workers: list[WorkerApp], n: int, *, stream: bool = False) -> list[list[dict[str, float]]]:
    """``n`` answers' Server-Timing per worker, the workers' requests interleaved (so both see
    the same load from the rest of the machine), after one discarded warm request each."""
    out: list[list[dict[str, float]]] = [[] for _ in workers]
    servers = [TestServer(build_worker_app(w)) for w in workers]
    async with aiohttp.ClientSession() as http:
        for server in servers:
            await server.start_server()
        try:
            deadline = time.monotonic() + 60
            while not all(w.ready for w in workers):
                assert time.monotonic() < deadline, "worker did not warm up"
                await asyncio.sleep(0.02)
            for i in range(n + 1):
                for k, server in enumerate(servers):
                    body = {"model": "tts-en", "input": TEXT, "voice": "joe", "response_format": "mp3",
                            "stream": stream}
                    async with http.post(server.make_url("/v1/audio/speech"), json=body) as resp:
                        assert resp.status == 200, await resp.text()
                        assert len(await resp.read()) > 1000
                        if i > 0:
                            out[k].append(parse_server_timing(resp.headers["Server-Timing"]))
        finally:
            for server in servers:
                await server.close()
    return out


def _stage_sums(worker: WorkerApp) -> dict[str, float]:
    sums: dict[str, float] = {}
    for line in worker.render_metrics().splitlines():
        if line.startswith("voxmesh_worker_stage_seconds_sum{"):
            labels, _, value = line.rpartition(" ")
            assert 'deployment="tts-en"' in labels
            sums[labels.split('stage="')[1].split('"')[0]] = float(value)
    return sums


@pytest.mark.parametrize("slow_stage", ["g2p", "normalize"])
async def test_a_slow_stage_shows_in_its_metric_and_server_timing_while_inference_stays_flat(
        piper: PiperEngine, slow_stage: str) -> None:
    def worker(settings: WorkerSettings) -> WorkerApp:
        return WorkerApp(piper, model="tts-en", engine_name="piper", settings=settings, cores=2,
                         dictionary=PronunciationDictionary.default(), preloaded=_loaded())

    base = worker(WorkerSettings())
    slow = worker(WorkerSettings(fault_stage=slow_stage, fault_stage_delay_ms=DELAY_MS))
    n = 3
    base_t, slow_t = await _timings([base, slow], n)

    for t in base_t + slow_t:
        assert set(STAGES) <= set(t)
        assert t["inference"] > 20  # the model really ran
    segments = 2 if slow_stage == "g2p" else 1  # g2p runs per sentence, planning once per request
    med = {k: statistics.median(t[k] for t in slow_t) for k in STAGES}
    base_med = {k: statistics.median(t[k] for t in base_t) for k in STAGES}
    # the slow stage is where the added time went: the stage that grew, and by the delay
    growth = {k: med[k] - base_med[k] for k in STAGES}
    assert max(growth, key=lambda k: growth[k]) == slow_stage, growth
    assert growth[slow_stage] >= 0.9 * DELAY_MS * segments
    # the model's own time did not move: whatever it drifted with the machine's load (the two
    # workers' requests alternate, so both see it) stays well under what the slow stage added
    assert abs(growth["inference"]) < 0.5 * growth[slow_stage], growth

    sums, base_sums = _stage_sums(slow), _stage_sums(base)
    grown = {k: sums[k] - base_sums[k] for k in STAGES}
    assert max(grown, key=lambda k: grown[k]) == slow_stage, grown
    assert sums[slow_stage] - base_sums[slow_stage] >= 0.9 * (n + 1) * segments * DELAY_MS / 1000
    assert f'voxmesh_worker_stage_seconds_count{{deployment="tts-en",stage="{slow_stage}"}} {n + 1}' in slow.render_metrics()


async def test_a_streamed_answer_sends_what_it_knows_at_start_and_counts_every_stage(piper: PiperEngine) -> None:
    w = WorkerApp(piper, model="tts-en", engine_name="piper", settings=WorkerSettings(), cores=2,
                  dictionary=PronunciationDictionary.default(), preloaded=_loaded())
    ((timing,),) = await _timings([w], 1, stream=True)
    assert set(timing) == {"queue", "normalize"}
    sums = _stage_sums(w)
    assert sums["inference"] > 0.04 and sums["g2p"] > 0 and sums["encode"] > 0
