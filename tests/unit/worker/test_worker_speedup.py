"""The worker calibrates its thread classes at warm-up, learns from served segments, and shows
the measured speed-ups and the cap in use in ``/info`` and ``/metrics`` (a tone engine that
sleeps less with more threads; structure only, never timing)."""

from __future__ import annotations

import time

from aiohttp.test_utils import TestClient, TestServer

from voxmesh.engines.base import Interrupt, Pcm, Segment, VoiceMix
from voxmesh.engines.tone import ToneEngine
from voxmesh.settings import WorkerSettings
from voxmesh.text.pronunciation import PronunciationDictionary
from voxmesh.worker.server import WorkerApp, build_worker_app

SPEECH = {"model": "m", "input": "Hello there, how are you today?", "voice": "low", "response_format": "pcm"}


class ScalingTone(ToneEngine):
    """A tone engine with a session per thread class: a segment sleeps ``ms_per_char[threads]``."""

    calibrate_at_start = True

    def __init__(self, ms_per_char: dict[int, float]) -> None:
        super().__init__()
        self.ms = ms_per_char
        self.runs: list[int] = []

    def session_classes(self, timeout: float | None = None) -> tuple[int, ...]:
        return tuple(sorted(self.ms))

    def synthesize_segment(self, segment: Segment, voice: VoiceMix, speed: float, *,
                           threads: int | None = None, interrupt: Interrupt | None = None) -> Pcm:
        k = threads or max(self.ms)
        self.runs.append(k)
        time.sleep(len(segment.text) * self.ms[k] / 1000.0)
        return super().synthesize_segment(segment, voice, speed, threads=threads)


async def _client(engine: ToneEngine, **settings: float) -> tuple[TestClient, WorkerApp]:  # type: ignore[type-arg]
    worker = WorkerApp(engine, model="m", engine_name="tone", settings=WorkerSettings(**settings), cores=2,
                       dictionary=PronunciationDictionary.default())
    client = TestClient(TestServer(build_worker_app(worker)))
    await client.start_server()
    while (await client.get("/readyz")).status != 200:
        pass
    return client, worker


async def test_calibration_at_start_shows_in_info_and_metrics_and_serving_refreshes_it() -> None:
    engine = ScalingTone({1: 0.2, 2: 0.02})
    client, worker = await _client(engine, calibration_rounds=1)
    try:
        assert engine.runs == [2, 1, 2, 1, 2]  # the warm-up, then per class one run discarded, one kept
        threads = (await (await client.get("/info")).json())["threads"]
        assert threads["cores"] == 2 and threads["classes"] == [1, 2]
        assert set(threads["seconds_per_char"]) == {"1", "2"}
        assert all(v > 0 for v in threads["seconds_per_char"].values())
        assert set(threads["speedup"]) == {"2"} and threads["speedup"]["2"] > 0
        assert threads["max_useful_threads"] in (1, 2) and threads["configured_max_useful_threads"] == 2
        assert threads["measured_max_useful_threads"] in (1, 2) and threads["min_speedup"] == 1.1
        assert threads["calibration_s"] >= threads["calibration_wait_s"] >= 0
        metrics = await (await client.get("/metrics")).text()
        assert 'voxmesh_worker_thread_speedup{model="m",threads="2"} ' in metrics
        assert f'voxmesh_worker_max_useful_threads{{model="m"}} {threads["max_useful_threads"]}' in metrics
        assert 'voxmesh_worker_thread_seconds_per_char{model="m",threads="1"} ' in metrics
        assert (await client.post("/v1/audio/speech", json=SPEECH)).status == 200
        granted = engine.runs[-1]
        est = worker.profile.estimate(granted) if worker.profile is not None else None
        assert est is not None and est.samples == 1  # a lone request on a steady worker: a sample
    finally:
        await client.close()


async def test_no_calibration_when_turned_off_and_none_for_engines_without_sessions() -> None:
    engine = ScalingTone({1: 0.0, 2: 0.0})
    client, worker = await _client(engine, calibration_rounds=0)
    try:
        assert engine.runs == [2]  # the warm-up only
        threads = (await (await client.get("/info")).json())["threads"]
        assert threads["speedup"] == {} and threads["calibration_s"] is None
        assert threads["max_useful_threads"] == 2  # nothing measured: the configured cap
    finally:
        await client.close()
    slow = ScalingTone({1: 0.0, 2: 0.0})
    slow.calibrate_at_start = False  # Kokoro: its profile fills from served segments alone
    client, worker = await _client(slow)
    try:
        assert slow.runs == [2] and worker.calibration_s is None and worker.profile is not None
    finally:
        await client.close()
    client, worker = await _client(ToneEngine())
    try:
        assert worker.profile is None
        threads = (await (await client.get("/info")).json())["threads"]
        assert threads["seconds_per_char"] == {} and threads["measured_max_useful_threads"] is None
        assert "voxmesh_worker_thread_speedup{" not in await (await client.get("/metrics")).text()
    finally:
        await client.close()


class HalfBuilt(ScalingTone):
    """Its two-thread session is not made yet (what a Kokoro worker looks like for its first seconds
    on more cores: a grant of k threads then runs on another session)."""

    def session_classes(self, timeout: float | None = None) -> tuple[int, ...]:
        return (1,)


async def test_a_segment_whose_class_has_no_session_yet_is_not_a_sample() -> None:
    engine = HalfBuilt({1: 0.0, 2: 0.0})
    client, worker = await _client(engine, calibration_rounds=0)
    try:
        assert (await client.post("/v1/audio/speech", json=SPEECH)).status == 200
        assert engine.runs[-1] == 2  # granted two threads, alone
        assert worker.profile is not None and worker.profile.seconds_per_unit() == {}
    finally:
        await client.close()


async def test_by_default_served_segments_measure_and_a_class_that_does_not_pay_stops_being_granted() -> None:
    """No calibration by default (the start stays fast). A lone request is granted both cores
    (class 2 not measured yet, then not settled: it is tried); requests side by side measure
    class 1; once both are settled (``speedup_min_samples``, 3) and two threads are measured
    slower than one, a lone request gets one core."""
    import asyncio

    engine = ScalingTone({1: 1.0, 2: 4.0})  # two threads are 4x slower here
    client, worker = await _client(engine)
    try:
        assert WorkerSettings().calibration_rounds == 0 and engine.runs == [2]  # warm-up only
        profile = worker.profile
        assert profile is not None

        def settled(k: int) -> bool:
            est = profile.estimate(k)
            return est is not None and profile.settled(est)

        for _ in range(3):  # lone requests: class 2 is tried until it settles
            assert (await client.post("/v1/audio/speech", json=SPEECH)).status == 200
            assert engine.runs[-1] == 2
        assert settled(2)
        # a pair gives a class-1 sample only when one segment runs with no start or end beside
        # it (the later one to start ends first): 3-14 pairs here, so up to 60 (each ~0.1 s)
        rounds = 0
        while not settled(1) and rounds < 60:
            replies = await asyncio.gather(*(client.post("/v1/audio/speech", json=SPEECH) for _ in range(2)))
            assert all(r.status == 200 for r in replies)
            rounds += 1
        assert settled(1), rounds
        assert profile.useful_max() == 1
        assert (await client.post("/v1/audio/speech", json=SPEECH)).status == 200
        assert engine.runs[-1] == 1  # alone, but two threads do not pay
        threads = (await (await client.get("/info")).json())["threads"]
        assert threads["max_useful_threads"] == 1 and threads["speedup"]["2"] < 1
    finally:
        await client.close()
