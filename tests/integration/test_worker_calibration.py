"""The warm-up thread calibration on a real Piper worker (in process, real HTTP on loopback):
it runs before the worker is ready, times classes 1 and 2 on this 2-core machine, and the
worker shows what it measured in ``/info`` and ``/metrics``.

Structure and positivity only, never timing: whether two threads beat one here depends on
what else the shared machine runs (``benchmarks/reports/calibration.md``)."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from voxmesh.engines.piper import PiperEngine
from voxmesh.settings import WorkerSettings
from voxmesh.text.pronunciation import PronunciationDictionary
from voxmesh.worker.server import WorkerApp, build_worker_app

pytestmark = pytest.mark.slow


async def test_piper_worker_calibrates_its_thread_classes_at_start() -> None:
    worker = WorkerApp(PiperEngine(), model="tts-en", engine_name="piper", settings=WorkerSettings(calibration_rounds=1), cores=2,
                       dictionary=PronunciationDictionary.default())
    async with TestServer(build_worker_app(worker)) as server, aiohttp.ClientSession() as http:
        deadline = time.monotonic() + 120
        while not worker.ready:
            assert time.monotonic() < deadline, "worker did not load"
            await asyncio.sleep(0.05)
        assert worker.calibration_s is not None  # before ready, not after
        async with http.get(server.make_url("/info")) as resp:
            threads = (await resp.json())["threads"]
        assert threads["classes"] == [1, 2]
        assert set(threads["seconds_per_char"]) == {"1", "2"}
        # a 57-character sentence: positive, and well under a second per character
        assert all(0 < v < 1 for v in threads["seconds_per_char"].values())
        assert threads["speedup"]["2"] > 0
        assert threads["max_useful_threads"] == threads["measured_max_useful_threads"] in (1, 2)
        assert threads["max_useful_threads"] == (2 if threads["speedup"]["2"] >= 1.1 else 1)
        assert 0 <= threads["calibration_wait_s"] <= threads["calibration_s"]
        async with http.get(server.make_url("/metrics")) as resp:
            metrics = await resp.text()
        assert 'voxmesh_worker_thread_speedup{model="tts-en",threads="2"} ' in metrics
        assert f'voxmesh_worker_max_useful_threads{{model="tts-en"}} {threads["max_useful_threads"]}' in metrics
        body = {"model": "tts-en", "input": "A sentence to serve after the calibration.", "voice": "joe",
                "response_format": "pcm"}
        async with http.post(server.make_url("/v1/audio/speech"), json=body) as resp:
            assert resp.status == 200
    profile = worker.profile
    assert profile is not None
    served = [e for e in (profile.estimate(1), profile.estimate(2)) if e is not None and e.samples > 0]
    assert len(served) == 1  # the lone request's segment fed the class it was granted
