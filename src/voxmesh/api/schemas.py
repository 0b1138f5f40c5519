"""Request bodies of the public API, validated with pydantic.

``SpeechRequest`` is OpenAI's ``/v1/audio/speech`` body plus voxmesh fields. Workers accept the
same body, so the gateway forwards it unchanged and any OpenAI-compatible TTS server can sit
behind the gateway as an upstream.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from voxmesh.errors import InvalidRequest

__all__ = [
    "AUDIO_FORMATS",
    "EMOTIONS",
    "SAMPLE_RATES",
    "SpeechRequest",
    "VoiceReference",
    "VoiceStyle",
    "parse_body",
]

AUDIO_FORMATS = ("wav", "mp3", "opus", "flac", "aac", "pcm")
SAMPLE_RATES = (16000, 22050, 24000, 44100, 48000)
EMOTIONS = ("neutral", "happy", "sad", "angry", "calm")

AudioFormat = Literal["wav", "mp3", "opus", "flac", "aac", "pcm"]
Emotion = Literal["neutral", "happy", "sad", "angry", "calm"]


class VoiceStyle(BaseModel):
    """A Kokoro style given by value: signed blend weights over stock voices (extrapolation
    allowed, sum > 0) plus a 256-d offset added to every row. The gateway puts an enrolled
    voice's fitted style here; it overrides ``voice``."""

    model_config = ConfigDict(extra="forbid")

    weights: dict[str, float] = Field(min_length=1, max_length=64)
    offset: list[float] = Field(default_factory=list, max_length=256)

    @field_validator("weights")
    @classmethod
    def _weights(cls, value: dict[str, float]) -> dict[str, float]:
        if sum(value.values()) <= 0 or any(abs(w) > 8 for w in value.values()):
            raise ValueError("voice_style weights must sum to > 0, each within [-8, 8]")
        return value

    @field_validator("offset")
    @classmethod
    def _offset(cls, value: list[float]) -> list[float]:
        if value and (len(value) != 256 or any(not -10 <= x <= 10 for x in value)):
            raise ValueError("voice_style offset must be empty or 256 numbers within [-10, 10]")
        return value


class VoiceReference(BaseModel):
    """A clip to clone (engines with voice cloning): base64 of a 16 kHz mono 16-bit WAV of at
    most 30 s, and its transcript. The gateway puts an enrolled voice here for cloning
    deployments; it overrides ``voice``."""

    model_config = ConfigDict(extra="forbid")

    audio: str = Field(min_length=1, max_length=1_400_000)
    transcript: str = Field(default="", max_length=2000)


class SpeechRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    model: str = Field(min_length=1, max_length=200)
    input: str = Field(min_length=1, max_length=20_000)
    voice: str | dict[str, float] = Field(
        default="default",
        description="a voice id, or for engines that blend voices a mapping voice id -> weight",
    )
    response_format: AudioFormat = "mp3"
    speed: float = Field(default=1.0, ge=0.25, le=4.0)
    stream: bool = False
    # OpenAI fields we accept and ignore where they do not apply
    instructions: str | None = Field(default=None, max_length=4096)
    stream_format: Literal["audio", "sse"] | None = None
    # voxmesh fields
    language: str | None = Field(default=None, max_length=16)
    emotion: Emotion = "neutral"
    voice_style: VoiceStyle | None = None
    voice_reference: VoiceReference | None = None
    sample_rate: Literal[16000, 22050, 24000, 44100, 48000] | None = None
    pronunciations: dict[str, str] = Field(
        default_factory=dict,
        description="word -> phonemes (English, engine alphabet) or pinyin with tone digits (Chinese)",
    )

    @field_validator("input")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("input is blank: give the text to speak")
        return value

    @field_validator("voice")
    @classmethod
    def _voice_weights(cls, value: str | dict[str, float]) -> str | dict[str, float]:
        if isinstance(value, dict):
            if not value:
                raise ValueError("voice blend is empty: give at least one voice id with a weight")
            if any(w <= 0 for w in value.values()):
                raise ValueError("voice blend weights must be > 0")
        return value

    @field_validator("pronunciations")
    @classmethod
    def _pron_size(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > 500:
            raise ValueError("at most 500 pronunciation overrides per request")
        for word, phon in value.items():
            if not word.strip() or not phon.strip():
                raise ValueError("pronunciation overrides map a non-empty word to non-empty phonemes")
        return value


def parse_body(raw: bytes, model: type[BaseModel]) -> Any:
    """Parse and validate a JSON body; every failure is a 400 that names the field to fix."""
    try:
        data = json.loads(raw or b"")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"request body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidRequest("request body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or None
        msg = first["msg"]
        if first["type"] == "literal_error":
            msg = f"{msg}" if loc is None else f"{loc}: {msg}"
        elif first["type"] == "extra_forbidden":
            msg = f"unknown field {loc!r}: remove it"
        elif first["type"] == "missing":
            msg = f"missing field {loc!r}"
        elif loc:
            msg = f"{loc}: {msg}"
        raise InvalidRequest(msg, param=loc) from exc
