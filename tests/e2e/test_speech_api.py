"""The public speech API as a user meets it: the official openai client, curl-style calls,
bad input, streaming. Runs against the real stack (gateway -> mTLS -> piper/kokoro workers)."""

from __future__ import annotations

import io
import json
import time
import urllib.error
import urllib.request
import wave
from typing import Any

import pytest
from openai import OpenAI
from tests.e2e.conftest import RunningStack

pytestmark = pytest.mark.slow


def post(url: str, body: bytes | dict[str, Any], *, timeout: float = 120) -> tuple[int, dict[str, str], bytes]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


def wav_info(data: bytes) -> tuple[int, float]:
    with wave.open(io.BytesIO(data)) as w:
        return w.getframerate(), w.getnframes() / w.getframerate()


def test_openai_client_create(stack: RunningStack) -> None:
    client = OpenAI(base_url=stack.url + "/v1", api_key="unused", max_retries=0)
    resp = client.audio.speech.create(model="tts-1", voice="joe", input="Hello from voxmesh.",
                                      response_format="wav")
    rate, seconds = wav_info(resp.content)
    assert rate == 22050
    assert 0.6 < seconds < 4.0


def test_openai_client_streaming(stack: RunningStack) -> None:
    client = OpenAI(base_url=stack.url + "/v1", api_key="unused", max_retries=0)
    chunks = []
    with client.audio.speech.with_streaming_response.create(
        model="tts-en", voice="joe", input="First sentence here. And a second one follows it.",
        response_format="mp3",
    ) as resp:
        assert resp.headers["content-type"] == "audio/mpeg"
        for chunk in resp.iter_bytes():
            chunks.append(chunk)
    data = b"".join(chunks)
    assert len(data) > 2000
    assert data[:3] == b"ID3" or data[0] == 0xFF


def test_kokoro_mandarin_and_blend(stack: RunningStack) -> None:
    voices = get_json(stack.url + "/v1/audio/voices?model=tts-multi")["voices"]
    ids = [v["id"] for v in voices]
    assert len(ids) == 54  # the Kokoro v1.0 pack `make setup` fetches (5 Japanese voices without it)
    assert {"zf_xiaobei", "af_heart", "jf_alpha"} <= set(ids)
    status, _, body = post(stack.url + "/v1/audio/speech", {
        "model": "tts-multi", "input": "我们明天去重庆。", "language": "zh", "voice": "zf_xiaobei",
        "response_format": "wav", "emotion": "happy", "pronunciations": {"重庆": "chong2 qing4"},
    })
    assert status == 200, body[:300]
    rate, seconds = wav_info(body)
    assert rate == 24000 and seconds > 0.5
    status, _, body = post(stack.url + "/v1/audio/speech", {
        "model": "tts-multi", "input": "A blended voice.", "language": "en",
        "voice": {"af_heart": 0.7, "bm_fable": 0.3}, "response_format": "pcm", "sample_rate": 16000,
    })
    assert status == 200 and len(body) > 16000


def test_models_list(stack: RunningStack) -> None:
    data = get_json(stack.url + "/v1/models")["data"]
    ids = {m["id"] for m in data}
    assert {"tts-en", "tts-multi", "tts-1"} <= ids


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (b'{"model": "tts-1", "input": ', 400, "JSON"),
        ({"model": "tts-1", "input": ""}, 400, "input"),
        ({"model": "tts-1", "input": "x" * 20_001}, 400, "input"),
        ({"model": "nope", "input": "hi"}, 404, "available models"),
        ({"model": "tts-1", "input": "hi", "voice": "zzz"}, 404, "joe"),
        ({"model": "tts-1", "input": "hi", "speed": 9}, 400, "speed"),
        ({"model": "tts-1", "input": "hi", "response_format": "ogg"}, 400, "response_format"),
        ({"model": "tts-multi", "input": "hi", "language": "xx"}, 400, "language"),
    ],
)
def test_bad_input_is_a_clear_4xx(stack: RunningStack, body: Any, status: int, needle: str) -> None:
    got, _, raw = post(stack.url + "/v1/audio/speech", body)
    assert got == status, raw[:300]
    err = json.loads(raw)["error"]
    assert needle in err["message"]
    assert "Traceback" not in raw.decode()


def test_stream_first_bytes_come_before_the_end(stack: RunningStack) -> None:
    text = " ".join(f"This is sentence number {i} of a longer paragraph." for i in range(1, 9))
    req = urllib.request.Request(
        stack.url + "/v1/audio/speech",
        data=json.dumps({"model": "tts-en", "input": text, "voice": "joe", "response_format": "pcm",
                         "stream": True}).encode(),
        headers={"Content-Type": "application/json"}, method="POST")
    t0 = time.monotonic()
    with urllib.request.urlopen(req, timeout=120) as r:
        first = r.read1(1024)
        t_first = time.monotonic() - t0
        rest = r.read()
    t_all = time.monotonic() - t0
    assert first and rest
    assert t_first < t_all / 2


def _server_timing(headers: dict[str, str]) -> dict[str, float]:
    value = {k.lower(): v for k, v in headers.items()}["server-timing"]
    return {name.strip(): float(dur) for name, dur in (part.split(";dur=") for part in value.split(","))}


def test_server_timing_says_where_the_time_went(stack: RunningStack) -> None:
    t0 = time.monotonic()
    status, headers, data = post(stack.url + "/v1/audio/speech", {
        "model": "tts-en", "input": "Timing travels back through the gateway.", "voice": "joe",
        "response_format": "wav"})
    wall_ms = 1000 * (time.monotonic() - t0)
    assert status == 200, data[:200]
    timing = _server_timing(headers)
    stages = {"normalize", "g2p", "inference", "prosody", "encode"}
    assert set(timing) == {"queue", "synth"} | stages
    assert timing["synth"] > 10 and timing["queue"] >= 0
    assert timing["queue"] + timing["synth"] < wall_ms
    assert sum(timing[s] for s in stages) <= timing["synth"] + 1  # the stages are parts of synthesis
    # streamed: the headers leave before synthesis, so only the queue wait and normalization are known
    status, headers, _ = post(stack.url + "/v1/audio/speech", {
        "model": "tts-en", "input": "Streamed.", "voice": "joe", "response_format": "pcm", "stream": True})
    assert status == 200
    assert set(_server_timing(headers)) == {"queue", "normalize"}
