"""Two deployments' workers (tone engine, in process, real HTTP on loopback) busy at once on one
host budget of 2 cores: every segment leases its threads from the broker, the sum of leases
never exceeds the budget (broker grant metrics), and both deployments are served."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer

from voxmesh.engines.tone import ToneEngine
from voxmesh.hostcores.broker import CoreBroker
from voxmesh.hostcores.budget import Share
from voxmesh.settings import WorkerSettings
from voxmesh.text.pronunciation import PronunciationDictionary
from voxmesh.worker.server import WorkerApp, build_worker_app


async def test_two_deployments_on_one_budget(tmp_path: Path) -> None:
    path = tmp_path / "cores.json"
    shares = {"a": Share(weight=1), "b": Share(weight=1)}
    workers = []
    for dep in ("a", "b"):
        w = WorkerApp(ToneEngine(delay_s=0.05), model=f"tts-{dep}", engine_name="tone",
                      settings=WorkerSettings(calm_s=0.0), cores=2, dictionary=PronunciationDictionary.default(),
                      host_cores=(CoreBroker(path, 2, shares), dep))
        workers.append(w)
    broker = CoreBroker(path, 2, shares)
    samples: list[int] = []
    async with TestServer(build_worker_app(workers[0])) as sa, TestServer(build_worker_app(workers[1])) as sb, \
            aiohttp.ClientSession() as http:
        deadline = time.monotonic() + 30
        while not all(w.ready for w in workers):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)

        async def speak(server: TestServer, model: str) -> int:
            body = {"model": model, "input": "One. Two. Three.", "voice": "low", "response_format": "pcm"}
            async with http.post(str(server.make_url("/v1/audio/speech")), json=body) as resp:
                await resp.read()
                return resp.status

        async def sample() -> None:
            while True:
                text = broker.metrics_text()
                samples.append(sum(int(v) for v in re.findall(r"voxmesh_host_cores_granted\{[^}]*\} (\d+)", text)))
                await asyncio.sleep(0.01)

        sampler = asyncio.create_task(sample())
        statuses = await asyncio.gather(*(speak(s, m) for _ in range(3) for s, m in ((sa, "tts-a"), (sb, "tts-b"))))
        sampler.cancel()
    assert statuses == [200] * 6
    snap = broker.snapshot()
    assert snap["max_granted"] <= 2 and max(samples) <= 2
    assert snap["grants"]["a"] >= 9 and snap["grants"]["b"] >= 9  # 3 requests x 3 segments each
    assert snap["leases"] == [] and snap["waiters"] == []  # every request gave its cores back
