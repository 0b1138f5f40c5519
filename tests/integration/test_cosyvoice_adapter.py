"""The cosyvoice engine (remote zero-shot cloning) against a stand-in of CosyVoice's FastAPI
server on loopback (tests/integration/cosyvoice_server.py; no real server can run here)."""

from __future__ import annotations

import asyncio
import base64
import io
import wave
from collections.abc import AsyncIterator

import numpy as np
import pytest
from aiohttp import web
from tests.integration.cosyvoice_server import StandIn

from voxmesh.api.schemas import SpeechRequest
from voxmesh.engines.base import CloningTtsEngine, Reference
from voxmesh.engines.cosyvoice import CosyVoiceRemoteEngine
from voxmesh.engines.registry import create_engine
from voxmesh.errors import ConfigError, InvalidRequest, UpstreamError, UpstreamTimeout
from voxmesh.text.pronunciation import PronunciationDictionary
from voxmesh.worker.synthesis import plan_speech, render_all


def wav16k(seconds: float = 3.0, f0: float = 150.0) -> bytes:
    pcm = (0.3 * np.sin(2 * np.pi * f0 * np.arange(int(16000 * seconds)) / 16000) * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


@pytest.fixture
async def server() -> AsyncIterator[tuple[StandIn, str]]:
    stand_in = StandIn()
    runner = web.AppRunner(stand_in.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield stand_in, f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_zero_shot_request_is_the_documented_one(server: tuple[StandIn, str]) -> None:
    stand_in, url = server
    engine = create_engine("cosyvoice", {"base_url": url, "sample_rate": 22050})
    assert isinstance(engine, CloningTtsEngine) and engine.capabilities().voice_cloning
    ref = Reference(wav16k(), "希望你以后能够做的比我还好呦。")
    pcm = await asyncio.to_thread(engine.synthesize_cloned, "你好，世界。", ref, "zh", 1.0)
    seen = stand_in.seen[0]
    assert seen.method == "GET" and seen.prompt_wav == ref.wav16k
    assert seen.fields == {"tts_text": "你好，世界。", "prompt_text": ref.transcript}
    assert pcm.dtype == np.float32 and pcm.size == int(22050 * (0.3 + 0.06 * 6)) and 0.35 < np.abs(pcm).max() < 0.41


async def test_through_the_worker_pipeline_with_an_enrolled_reference(server: tuple[StandIn, str]) -> None:
    stand_in, url = server
    engine = CosyVoiceRemoteEngine(url)
    ref = wav16k(4.0)
    req = SpeechRequest.model_validate({
        "model": "tts-clone", "input": "First sentence here. And a second one.", "language": "en",
        "voice_reference": {"audio": base64.b64encode(ref).decode(), "transcript": "the prompt words"},
        "response_format": "pcm", "sample_rate": 24000})
    plan = plan_speech(req, engine, PronunciationDictionary())
    pcm = await asyncio.to_thread(render_all, engine, plan, 1)
    assert len(stand_in.seen) == len(plan.segments) >= 1 and pcm.size > 24000 * 0.5
    assert all(s.prompt_wav == ref and s.fields["prompt_text"] == "the prompt words" for s in stand_in.seen)
    plain = SpeechRequest(model="tts-clone", input="Hi.", response_format="pcm")
    with pytest.raises(InvalidRequest, match="enrolled voice"):
        render_all(engine, plan_speech(plain, engine, PronunciationDictionary()), 1)


async def test_failures_are_translated(server: tuple[StandIn, str]) -> None:
    stand_in, url = server
    ref = Reference(wav16k(), "words")
    with pytest.raises(InvalidRequest, match="transcript"):
        CosyVoiceRemoteEngine(url).synthesize_cloned("x", Reference(wav16k(), " "), "en", 1.0)
    with pytest.raises(UpstreamError, match="405"):  # a GET-only server version, called with POST
        await asyncio.to_thread(CosyVoiceRemoteEngine(url, method="POST").synthesize_cloned, "x", ref, "en", 1.0)
    with pytest.raises(UpstreamError, match="500"):
        await asyncio.to_thread(CosyVoiceRemoteEngine(url).synthesize_cloned, "x", Reference(b"RIFFjunk", "w"), "en", 1.0)
    stand_in.fail_status = 503
    with pytest.raises(UpstreamError, match="503"):
        await asyncio.to_thread(CosyVoiceRemoteEngine(url).synthesize_cloned, "x", ref, "en", 1.0)
    stand_in.fail_status = None
    stand_in.delay_s = 2.0
    with pytest.raises(UpstreamTimeout):
        await asyncio.to_thread(CosyVoiceRemoteEngine(url, timeout_s=0.3).synthesize_cloned, "x", ref, "en", 1.0)
    with pytest.raises(UpstreamError, match="unreachable"):
        CosyVoiceRemoteEngine("http://127.0.0.1:9").synthesize_cloned("x", ref, "en", 1.0)


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match="base_url"):
        create_engine("cosyvoice", {})
    with pytest.raises(ConfigError, match="unknown options"):
        create_engine("cosyvoice", {"base_url": "http://x", "voice": "y"})
    with pytest.raises(ConfigError, match="GET or POST"):
        create_engine("cosyvoice", {"base_url": "http://x", "method": "PUT"})
