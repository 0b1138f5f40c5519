"""Voices as a user meets them, on a real stack (gateway -> mTLS -> piper and kokoro workers):
OpenAI's voice names, ``instructions`` and the gpt-4o-mini-tts alias with the official openai
client; enrolment of a clip, voice matching in the background, the enrolled voice in the speech
API (plain and streamed) and in a job; deletion. The fit is kept short by settings.voices."""

from __future__ import annotations

import io
import json
import time
import urllib.error
import urllib.request
import wave
from collections.abc import Iterator
from typing import Any

import pytest
from openai import OpenAI
from tests.e2e.conftest import RunningStack, run_stack

from voxmesh.engines.kokoro_voices import default_pack_path

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not default_pack_path().is_file(), reason="54-voice pack absent: run `make setup`"),
]

CONFIG = """
settings:
  log_level: INFO
  voices: {candidates: [af_heart, am_adam, bm_george, af_bella], top_k: 2, local_steps: 1, max_renders: 16}
deployments:
  - name: tts-en
    engine: piper
    replicas: {min: 1, max: 1, warm: 0}
    threads: 1
  - name: tts-multi
    engine: kokoro
    replicas: {min: 1, max: 1, warm: 0}
    threads: 2
aliases:
  tts-1: tts-en
  gpt-4o-mini-tts: tts-multi
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    with run_stack(tmp_path_factory.mktemp("voices-stack"), CONFIG) as running:
        yield running


def seconds(wav_bytes: bytes) -> float:
    with wave.open(io.BytesIO(wav_bytes)) as w:
        return w.getnframes() / w.getframerate()


def call(method: str, url: str, body: dict[str, Any] | bytes | None = None,
         content_type: str = "application/json") -> tuple[int, Any]:
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            raw = r.read()
            return r.status, json.loads(raw) if r.headers.get("Content-Type", "").startswith("application/json") else raw
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def multipart(fields: dict[str, str], audio: bytes) -> tuple[bytes, str]:
    b = "voxmesh-e2e-boundary"
    out = b"".join(f'--{b}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
                   for k, v in fields.items())
    out += (f'--{b}\r\nContent-Disposition: form-data; name="file"; filename="joe.wav"\r\n'
            "Content-Type: audio/wav\r\n\r\n").encode() + audio + f"\r\n--{b}--\r\n".encode()
    return out, f"multipart/form-data; boundary={b}"


def test_openai_names_instructions_and_alias(stack: RunningStack) -> None:
    client = OpenAI(base_url=stack.url + "/v1", api_key="unused", max_retries=0)
    text = "The quick brown fox jumps over the lazy dog near the river bank."
    plain = client.audio.speech.create(model="gpt-4o-mini-tts", voice="alloy", input=text, response_format="wav")
    quick = client.audio.speech.create(model="gpt-4o-mini-tts", voice="alloy", input=text, response_format="wav",
                                       instructions="Speak in a cheerful tone, and very quickly.")
    assert seconds(quick.content) < 0.9 * seconds(plain.content)  # x1.25 speed and x1.08 (happy)
    piper = client.audio.speech.create(model="tts-1", voice="nova", input="Hello.", response_format="wav")
    assert seconds(piper.content) > 0.3  # Piper's single voice answers any OpenAI name
    listing = call("GET", stack.url + "/v1/audio/voices")[1]
    ids = [v["id"] for v in listing["models"]["tts-multi"]]
    assert len(ids) == 54 and {"af_alloy", "am_echo", "bm_fable", "af_nova", "am_onyx"} <= set(ids)


def test_enrol_match_speak_job_delete(stack: RunningStack) -> None:
    client = OpenAI(base_url=stack.url + "/v1", api_key="unused", max_retries=0)
    clip = client.audio.speech.create(
        model="tts-1", voice="joe", response_format="wav",
        input="The stale smell of old beer lingers. It takes heat to bring out the odor. A cold dip restores health.")
    data = {"name": "Joe", "consent": "true", "language": "en", "model": "tts-multi"}
    status, refused = call("POST", stack.url + "/v1/audio/voices", *multipart({**data, "consent": "false"}, clip.content))
    assert status == 400 and "consent" in refused["error"]["message"]
    status, created = call("POST", stack.url + "/v1/audio/voices", *multipart(data, clip.content))
    assert status == 202, created
    vid = created["id"]
    deadline = time.monotonic() + 600
    voice: dict[str, Any] = {}
    while time.monotonic() < deadline:
        voice = call("GET", f"{stack.url}/v1/audio/voices/{vid}")[1]
        if voice["status"] != "fitting":
            break
        time.sleep(2)
    assert voice["status"] == "ready", voice
    report = voice["report"]
    assert report["best_stock"] in ("af_heart", "am_adam", "bm_george", "af_bella") and report["renders"] >= 3
    print(f"\nenrolled joe: {json.dumps(report['heldout_text'])}")

    speech = client.audio.speech.create(model="tts-multi", voice=vid, input="Hello from an enrolled voice.",  # type: ignore[arg-type]
                                        response_format="wav")
    assert seconds(speech.content) > 0.8
    with client.audio.speech.with_streaming_response.create(
            model="tts-multi", voice=vid, input="One sentence. And another.", response_format="pcm") as r:  # type: ignore[arg-type]
        assert len(b"".join(r.iter_bytes())) > 24000
    status, job = call("POST", stack.url + "/v1/jobs", {"text": "A job in the enrolled voice. Two sentences.",
                                                        "model": "tts-multi", "voice": vid, "response_format": "wav"})
    assert status == 201, job
    while time.monotonic() < deadline and job["state"] in ("queued", "running"):
        time.sleep(1)
        job = call("GET", f"{stack.url}/v1/jobs/{job['id']}")[1]
    assert job["state"] == "succeeded", job

    assert call("DELETE", f"{stack.url}/v1/audio/voices/{vid}")[0] == 200
    assert call("GET", f"{stack.url}/v1/audio/voices/{vid}")[0] == 404
    assert call("POST", stack.url + "/v1/audio/speech", {"model": "tts-multi", "input": "x", "voice": vid})[0] == 404
    left = list((stack.data_dir / "objects" / "voices").rglob("*")) if (stack.data_dir / "objects").exists() else []
    assert not [p for p in left if p.is_file()]
