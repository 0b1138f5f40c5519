"""Documented bodies of routes that parse by hand (translation, admin, jobs, usage) and the
error body every route answers. The speech route's body is ``schemas.SpeechRequest`` itself
and a job's status is ``jobs.service.JobStatus``; these models describe the rest for
``/openapi.json`` (``voxmesh.api.openapi``), field for field what the handlers accept.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Literal, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, create_model

from voxmesh.gateway.canary import CanaryConfig

__all__ = [
    "CanaryStart",
    "ChatCompletionRequest",
    "DetectRequest",
    "DetectedLanguage",
    "ErrorBody",
    "ErrorDetail",
    "JobCreate",
    "JobList",
    "Language",
    "ModelEntry",
    "ModelList",
    "SplitWeights",
    "Status",
    "TranslateAnswer",
    "TranslateRequest",
    "TranslationsRequest",
    "UsageAnswer",
    "UsageRow",
]


class ErrorDetail(BaseModel):
    type: str = Field(description="invalid_request_error, not_found_error, rate_limit_error, ...")
    message: str = Field(description="what went wrong and what to fix")
    param: str | None = Field(description="the field at fault, if any")


class ErrorBody(BaseModel):
    error: ErrorDetail


class Status(BaseModel):
    status: str


class ModelEntry(BaseModel):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str
    kind: str = Field(description="tts | mt | chat")
    alias_of: str | None = None
    split: dict[str, float] | None = None


class ModelList(BaseModel):
    object: Literal["list"]
    data: list[ModelEntry]


_Texts = str | list[str]


class TranslateRequest(BaseModel):
    """LibreTranslate's body (JSON or a form)."""

    model_config = ConfigDict(extra="allow")

    q: _Texts
    source: str = Field("auto", description="a language code or 'auto'")
    target: str
    format: Literal["text", "html"] = "text"
    api_key: str | None = Field(None, description="the caller's API key (LibreTranslate clients)")
    alternatives: int | None = Field(None, ge=0)
    model: str | None = None


class DetectedLanguage(BaseModel):
    confidence: float
    language: str


class TranslateAnswer(BaseModel):
    translatedText: str | list[str]
    detectedLanguage: DetectedLanguage | list[DetectedLanguage] | None = None
    alternatives: list[Any] | None = None


class DetectRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    q: _Texts
    api_key: str | None = None


class Language(BaseModel):
    code: str
    name: str
    targets: list[str]


class TranslationsRequest(BaseModel):
    model: str | None = None
    input: _Texts
    source: str = "auto"
    target: str
    format: Literal["text", "html"] = "text"
    glossary: dict[str, str] | list[dict[str, str]] | None = None
    context: str | None = None
    stream: bool = False
    temperature: float | None = Field(None, ge=0, le=2)


class ChatCompletionRequest(BaseModel):
    """OpenAI's chat body, passed through to the chat deployment named by ``model``."""

    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[dict[str, Any]]
    stream: bool = False


class SplitWeights(BaseModel):
    weights: dict[str, float] = Field(description="deployment -> weight (>= 0, not all zero)")


def _canary_start() -> type[BaseModel]:
    """``POST /admin/canaries``: ``model``, ``primary`` and ``canary``, then every field of
    :class:`~voxmesh.gateway.canary.CanaryConfig` with the type and default the dataclass
    declares (the handler passes the rest of the body to ``CanaryConfig(**rest)``), so that
    the document cannot drift from what the analysis uses."""
    hints = get_type_hints(CanaryConfig)
    tuning: dict[str, Any] = {f.name: (hints[f.name], f.default) for f in fields(CanaryConfig)}
    return create_model("CanaryStart", model=(str, ...), primary=(str, ...), canary=(str, ...), **tuning)


CanaryStart = _canary_start()


class JobCreate(BaseModel):
    """JSON form of ``POST /v1/jobs`` (multipart: the same fields plus a ``file`` part)."""

    model_config = ConfigDict(extra="forbid")

    text: str | None = None
    voice: str
    model: str
    response_format: str = "wav"
    options: dict[str, Any] | None = None
    webhook_url: str | None = None


class JobList(BaseModel):
    object: Literal["list"]
    data: list[dict[str, Any]]
    next_cursor: str | None


class UsageRow(BaseModel):
    tenant: str
    chars_synthesized: float
    audio_seconds: float
    chars_translated: float
    jobs: float
    requests: float
    throttled: float


class UsageAnswer(BaseModel):
    object: Literal["usage"]
    at: int
    data: list[UsageRow]
