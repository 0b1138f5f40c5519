"""Remote zero-shot cloning engine: a CosyVoice FastAPI server behind a voxmesh worker.

API followed (no such server runs here; the tests use a stand-in of it on loopback):
CosyVoice's ``runtime/python/fastapi/server.py`` (FunAudioLLM/CosyVoice, the version at commit
1cfc5dd0777b3a4fb83bbe83174b7c22e92a5843, default port 50000):

    GET /inference_zero_shot      form fields tts_text, prompt_text, file prompt_wav
                                  (the server loads it at 16 kHz: ``load_wav(prompt_wav.file, 16000)``)
    -> 200, body: raw mono int16 little-endian PCM at the model's rate, streamed
       (``(tts_speech * 2**15).astype(int16).tobytes()`` per chunk); the rate is not announced:
       22050 Hz for CosyVoice-300M, 24000 Hz for CosyVoice2-0.5B (option ``sample_rate``)
    -> 422 (FastAPI) when a form field is missing

Later versions of that file also answer POST on the same paths (option ``method: POST``).

Governance: the worker in front of this engine gets the gateway's balancing, retries,
breakers and admission like any worker; this adapter adds a timeout and translates failures
(connection refused / 5xx -> 502 UpstreamError, timeout -> 504, 4xx -> 502 naming the server's
complaint). ``speed`` other than 1 is applied by the pipeline (time stretch), since the API
of that version has no speed field.
"""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.request
from typing import Any

import numpy as np

from voxmesh.engines.base import Capabilities, Interrupt, Pcm, Reference, Segment, Voice, VoiceMix
from voxmesh.errors import InvalidRequest, UpstreamError, UpstreamTimeout

__all__ = ["API_VERSION", "CosyVoiceRemoteEngine"]

API_VERSION = "FunAudioLLM/CosyVoice runtime/python/fastapi/server.py @ 1cfc5dd0777b3a4fb83bbe83174b7c22e92a5843"
REFERENCE_VOICE = Voice("reference", "Enrolled reference", ("zh", "en", "ja", "ko"), None,
                        "zero-shot: speaks in the voice of an enrolled clip")


def _multipart(fields: dict[str, str], file_field: str, filename: str, data: bytes) -> tuple[bytes, str]:
    boundary = "voxmesh-" + secrets.token_hex(12)
    out = bytearray()
    for name, value in fields.items():
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n").encode()
        out += value.encode("utf-8") + b"\r\n"
    out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{file_field}\"; filename=\"{filename}\"\r\n"
            "Content-Type: audio/wav\r\n\r\n").encode()
    out += data + b"\r\n" + f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


class CosyVoiceRemoteEngine:
    name = "cosyvoice"
    uses_local_cores = False  # the model runs on the server: its workers stay out of the host core budget

    def __init__(self, base_url: str, *, sample_rate: int = 22050, method: str = "GET", timeout_s: float = 120.0,
                 languages: tuple[str, ...] = ("zh", "en", "ja", "ko")) -> None:
        if method not in ("GET", "POST"):
            raise ValueError("method must be GET or POST")
        self.base_url = base_url.rstrip("/")
        self.sample_rate = sample_rate
        self.method = method
        self.timeout_s = timeout_s
        self.languages = languages

    def load(self, threads: int) -> None:  # nothing local: the model lives on the server
        return None

    def warm_up(self) -> None:
        return None

    def capabilities(self) -> Capabilities:
        return Capabilities(kind="tts", sample_rate=self.sample_rate, languages=self.languages, streaming=True,
                            voice_cloning=True, max_segment_chars=300)

    def voices(self) -> list[Voice]:
        return [REFERENCE_VOICE]

    def phonemize(self, text: str, language: str) -> str:
        raise InvalidRequest("the cosyvoice engine takes text, not phonemes", param="pronunciations")

    def unknown_phonemes(self, phonemes: str, language: str) -> str:
        return phonemes

    def synthesize_segment(self, segment: Segment, voice: VoiceMix, speed: float, *, threads: int | None = None,
                           interrupt: Interrupt | None = None) -> Pcm:
        if voice.reference is None:
            raise InvalidRequest("this deployment clones a voice: use an enrolled voice id (POST /v1/audio/voices "
                                 "with a transcript)", param="voice")
        return self.synthesize_cloned(segment.text, voice.reference, segment.language, speed)

    def synthesize_cloned(self, text: str, reference: Reference, language: str, speed: float) -> Pcm:
        if not reference.transcript.strip():
            raise InvalidRequest("CosyVoice zero-shot needs the reference's transcript: enrol with 'transcript'",
                                 param="voice")
        body, ctype = _multipart({"tts_text": text, "prompt_text": reference.transcript}, "prompt_wav",
                                 "prompt.wav", reference.wav16k)
        req = urllib.request.Request(f"{self.base_url}/inference_zero_shot", data=body, method=self.method,
                                     headers={"Content-Type": ctype})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                data = resp.read()
        except urllib.error.HTTPError as exc:
            detail = _detail(exc.read())
            raise UpstreamError(f"cosyvoice server at {self.base_url} answered {exc.code}: {detail}") from exc
        except TimeoutError as exc:
            raise UpstreamTimeout(f"cosyvoice server at {self.base_url} timed out after {self.timeout_s:.0f} s") from exc
        except (urllib.error.URLError, OSError) as exc:
            if isinstance(getattr(exc, "reason", None), TimeoutError):
                raise UpstreamTimeout(f"cosyvoice server at {self.base_url} timed out connecting") from exc
            raise UpstreamError(f"cosyvoice server at {self.base_url} unreachable: {exc}") from exc
        if len(data) % 2:
            raise UpstreamError(f"cosyvoice server returned {len(data)} bytes: not whole int16 samples")
        if not data:
            raise UpstreamError("cosyvoice server returned no audio")
        return (np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0).clip(-1.0, 1.0)


def _detail(raw: bytes) -> str:
    try:
        data: Any = json.loads(raw)
        return json.dumps(data.get("detail", data))[:300] if isinstance(data, dict) else str(data)[:300]
    except ValueError:
        return raw[:300].decode("utf-8", "replace")
