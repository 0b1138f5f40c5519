"""A burst after idle on a real Piper worker (in process, real HTTP on loopback): the second
request takes the cores of the first one's fresh all-core segment back, both start at once on
one core each, and the first one's segment runs again without the client seeing anything."""

from __future__ import annotations

import asyncio
import time

import aiohttp
from aiohttp.test_utils import TestServer

from voxmesh.engines.piper import PiperEngine
from voxmesh.settings import WorkerSettings
from voxmesh.text.pronunciation import PronunciationDictionary
from voxmesh.worker.server import WorkerApp, build_worker_app

LONG = ("The patient listener waits for the next sentence, and then for one more, while the quick brown "
        "fox jumps over the lazy dog again and again, until the evening comes.")
SHORT = "A short reply follows."


async def test_a_burst_after_idle_takes_back_the_fresh_wide_segment() -> None:
    # preempt_frac 1: any time before its expected end. No thread calibration: on a loaded
    # machine it may find that two threads do not pay and cap every grant at one core (this
    # test is about taking a wide segment back, not about the measured cap)
    settings = WorkerSettings(calm_s=0.0, preempt_frac=1.0, calibration_rounds=0)
    worker = WorkerApp(PiperEngine(), model="tts-en", engine_name="piper", settings=settings, cores=2,
                       dictionary=PronunciationDictionary.default())
    async with TestServer(build_worker_app(worker)) as server, aiohttp.ClientSession() as http:
        url = str(server.make_url("/v1/audio/speech"))
        deadline = time.monotonic() + 120
        while not worker.ready:
            assert time.monotonic() < deadline, "worker did not load"
            await asyncio.sleep(0.05)

        async def speak(text: str) -> tuple[int, bytes, str]:
            body = {"model": "tts-en", "input": text, "voice": "joe", "response_format": "pcm"}
            async with http.post(url, json=body) as resp:
                return resp.status, await resp.read(), resp.headers.get("Server-Timing", "")

        status, alone, _ = await speak(LONG)  # alone: all cores; admission learns their speed
        assert status == 200 and worker.admission.wide_seconds_per_unit > 0
        first = asyncio.create_task(speak(LONG))
        await asyncio.sleep(0.02)
        second = asyncio.create_task(speak(SHORT))
        (s1, pcm1, _), (s2, pcm2, timing2) = await asyncio.gather(first, second)

    assert (s1, s2) == (200, 200)
    assert worker.admission.scheduler.preemptions == 1
    # the rerun segment is whole speech of the same length (Piper's noise moves it a little)
    assert abs(len(pcm1) - len(alone)) < 0.15 * len(alone)
    assert len(pcm2) > 0.5 * 22050 * 2
    queue_ms = float(timing2.split("queue;dur=")[1].split(",")[0])
    assert queue_ms < 150  # started at once, not after the first request's sentence
    metrics = worker.render_metrics()
    assert 'voxmesh_worker_segment_preemptions_total{model="tts-en"} 1' in metrics
