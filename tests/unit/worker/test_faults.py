"""Worker fault injection: the knobs, and the run-time toggle on a real worker app (tone engine)."""

from __future__ import annotations

import random
import time

from aiohttp.test_utils import TestClient, TestServer

from voxmesh.engines.tone import ToneEngine
from voxmesh.settings import WorkerSettings
from voxmesh.text.pronunciation import PronunciationDictionary
from voxmesh.worker.faults import Faults
from voxmesh.worker.server import WorkerApp, build_worker_app

SPEECH = {"model": "tone", "input": "Hello there.", "voice": "low", "response_format": "pcm"}


async def test_inject_fails_at_the_rate_and_delays() -> None:
    f = Faults(error_rate=0.5, rng=random.Random(7))
    failures = 0
    for _ in range(200):
        try:
            await f.inject()
        except Exception:
            failures += 1
    assert 70 < failures < 130 and f.injected == failures
    f.error_rate, f.delay_ms = 0.0, 30.0
    t0 = time.monotonic()
    await f.inject()
    assert time.monotonic() - t0 >= 0.03


async def _client() -> TestClient:  # type: ignore[type-arg]
    worker = WorkerApp(ToneEngine(), model="tone", engine_name="tone", settings=WorkerSettings(), cores=1,
                       dictionary=PronunciationDictionary.default())
    client = TestClient(TestServer(build_worker_app(worker)))
    await client.start_server()
    while (await client.get("/readyz")).status != 200:
        pass
    return client


async def test_toggle_at_run_time_turns_answers_into_500_and_back() -> None:
    client = await _client()
    try:
        assert (await client.post("/v1/audio/speech", json=SPEECH)).status == 200
        resp = await client.put("/admin/faults", json={"error_rate": 1})
        assert resp.status == 200 and await resp.json() == {"error_rate": 1.0, "delay_ms": 0.0}
        assert (await client.post("/v1/audio/speech", json=SPEECH)).status == 500
        await client.put("/admin/faults", json={"error_rate": 0})
        assert (await client.post("/v1/audio/speech", json=SPEECH)).status == 200
        assert await (await client.get("/admin/faults")).json() == {"error_rate": 0.0, "delay_ms": 0.0}
    finally:
        await client.close()


async def test_bad_toggle_is_a_400_naming_the_field() -> None:
    client = await _client()
    try:
        resp = await client.put("/admin/faults", json={"error_rate": 2})
        assert resp.status == 400 and "error_rate" in (await resp.json())["error"]["message"]
        resp = await client.put("/admin/faults", json={"hang": True})
        assert resp.status == 400 and "hang" in (await resp.json())["error"]["message"]
    finally:
        await client.close()
