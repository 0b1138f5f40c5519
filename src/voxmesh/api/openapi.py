"""``GET /openapi.json`` (OpenAPI 3.1) and ``GET /docs``, built from the route schemas.

:data:`OPERATIONS` is the table of every public route: its body (the pydantic model or
dataclass the handler validates with, through pydantic's JSON Schema, which is the schema
dialect of OpenAPI 3.1), parameters, answers and error statuses. :func:`build_openapi`
turns it into the document; ``scopes`` (``(method, path) -> scope``, the auth guard's route
table) adds per-route security: bearer (JWT or API key) everywhere, and LibreTranslate's
``api_key`` body field on its routes. A route without a scope is documented as open.

tests/unit/api/test_openapi.py proves every route of the app is here and the document
validates; tests/integration/test_openapi_fuzz.py runs schemathesis against a live stack.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any

from aiohttp import web
from pydantic import TypeAdapter

from voxmesh.api.bodies import (
    CanaryStart,
    ChatCompletionRequest,
    DetectedLanguage,
    DetectRequest,
    ErrorBody,
    JobCreate,
    JobList,
    Language,
    ModelList,
    SplitWeights,
    Status,
    TranslateAnswer,
    TranslateRequest,
    TranslationsRequest,
    UsageAnswer,
)
from voxmesh.api.schemas import SpeechRequest
from voxmesh.jobs.service import JobStatus

__all__ = ["OPERATIONS", "Operation", "build_openapi", "setup_openapi_routes"]

_JSON = "application/json"
_FORM = ("application/x-www-form-urlencoded", "multipart/form-data")
_ANY_OBJECT: dict[str, Any] = {"type": "object"}
_BINARY: dict[str, Any] = {"type": "string", "contentMediaType": "application/octet-stream"}
_AUDIO = ("audio/mpeg", "audio/wav", "audio/ogg", "audio/flac", "audio/aac", "audio/pcm")
_UPSTREAM = (502, 503, 504)  # the data plane's answers when no replica could
_ERROR_TEXT = {
    400: "invalid request: the message says what to fix",
    401: "missing or invalid credential",
    403: "the credential lacks the scope, or an admin route off loopback",
    404: "no such object, model or deployment",
    409: "conflict with the object's state",
    413: "body or job over its size limit",
    415: "unsupported media type",
    429: "rate limit or quota reached (Retry-After, x-ratelimit-*)",
    502: "the upstream failed",
    503: "no replica ready (Retry-After)",
    504: "the upstream timed out",
}


@dataclass(frozen=True)
class Param:
    name: str
    where: str  # query | path | header
    schema: Mapping[str, Any]
    description: str = ""
    required: bool = False


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    tag: str
    body: Any = None  # a pydantic model / dataclass type, or None
    body_types: tuple[str, ...] = (_JSON,)
    ok: int = 200
    answer: Any = None  # a type, a raw JSON schema (Mapping), or None for no body
    answer_types: tuple[str, ...] = (_JSON,)
    errors: tuple[int, ...] = ()
    params: tuple[Param, ...] = ()
    extra_answers: Mapping[int, str] = field(default_factory=dict)  # other statuses without body schema
    libretranslate: bool = False


_MODEL_Q = Param("model", "query", {"type": "string"}, "only this model's voices")
_ID = Param("id", "path", {"type": "string"}, "the job id", required=True)
_MODEL_P = Param("model", "path", {"type": "string"}, "a public model name", required=True)
_VOICES: dict[str, Any] = {"type": "object", "description": "{models: {deployment: [voice]}} or {model, voices}"}
_VOICE_ID = Param("voice_id", "path", {"type": "string"}, "an enrolled voice id (voice_...)", required=True)
_VOICE: dict[str, Any] = {"type": "object", "description": "an enrolled voice: id, name, model, state, progress"}
_VOICE_FORM: dict[str, Any] = {
    "type": "object", "required": ["file", "name", "consent"],
    "properties": {
        "file": {"type": "string", "format": "binary", "description": "3-30 s of speech: wav, mp3, flac or ogg"},
        "name": {"type": "string"}, "transcript": {"type": "string"}, "language": {"type": "string"},
        "model": {"type": "string"}, "consent": {"type": "string", "enum": ["true"]},
    },
}

OPERATIONS: tuple[Operation, ...] = (
    Operation("GET", "/healthz", "Liveness", "health", answer=Status),
    Operation("GET", "/readyz", "Readiness: 200 once every deployment serves, 503 before", "health",
              answer=Status, extra_answers={503: "starting"}),
    Operation("GET", "/metrics", "Prometheus metrics", "health", answer={"type": "string"},
              answer_types=("text/plain",)),
    Operation("GET", "/v1/models", "Models: deployments, splits and aliases", "models", answer=ModelList),
    Operation("GET", "/v1/audio/voices", "Voices per TTS model", "speech", answer=_VOICES, errors=(404,),
              params=(_MODEL_Q,)),
    Operation("POST", "/v1/audio/voices", "Enrol a voice from 3-30 s of speech (voice matching runs in the background)",
              "voices", body=_VOICE_FORM, body_types=("multipart/form-data",), ok=202, answer=_VOICE,
              errors=(400, 404, 413, 415)),
    Operation("GET", "/v1/audio/voices/{voice_id}", "An enrolled voice: state, fit progress, similarity report",
              "voices", answer=_VOICE, errors=(404,), params=(_VOICE_ID,)),
    Operation("DELETE", "/v1/audio/voices/{voice_id}", "Delete an enrolled voice (audio, embedding, fitted style)",
              "voices", answer=_ANY_OBJECT, errors=(404,), params=(_VOICE_ID,)),
    Operation("POST", "/v1/audio/speech", "Synthesize speech (OpenAI-compatible)", "speech", body=SpeechRequest,
              answer=_BINARY, answer_types=_AUDIO, errors=(400, 404, 413, 415, *_UPSTREAM)),
    Operation("POST", "/translate", "Translate (LibreTranslate-compatible)", "translation", body=TranslateRequest,
              body_types=(_JSON, *_FORM), answer=TranslateAnswer, errors=(400, 404, 413, 415, *_UPSTREAM),
              libretranslate=True),
    Operation("POST", "/detect", "Detect the language (LibreTranslate-compatible)", "translation",
              body=DetectRequest, body_types=(_JSON, *_FORM), answer=list[DetectedLanguage],
              errors=(400, 404, 413, 415, *_UPSTREAM), libretranslate=True),
    Operation("GET", "/languages", "Languages and their targets (LibreTranslate-compatible)", "translation",
              answer=list[Language], errors=(404, *_UPSTREAM)),
    Operation("POST", "/v1/translations", "Translate (JSON; stream: true for server-sent events)", "translation",
              body=TranslationsRequest, answer=_ANY_OBJECT, answer_types=(_JSON, "text/event-stream"),
              errors=(400, 404, 413, 415, *_UPSTREAM)),
    Operation("POST", "/v1/chat/completions", "Chat completions, routed by model to a chat deployment", "translation",
              body=ChatCompletionRequest, answer=_ANY_OBJECT, answer_types=(_JSON, "text/event-stream"),
              errors=(400, 404, 413, 415, *_UPSTREAM)),
    Operation("POST", "/v1/jobs", "Create a long-text job (JSON text, or multipart with a file)", "jobs",
              body=JobCreate, body_types=(_JSON, "multipart/form-data"), ok=201, answer=JobStatus,
              errors=(400, 404, 409, 413, 415), params=(
                  Param("Idempotency-Key", "header", {"type": "string", "maxLength": 255},
                        "repeat the submission safely: the same key and request give the first job back "
                        "(200, Idempotent-Replayed: true); the same key with another request is a 409"),),
              extra_answers={200: "a replay of an earlier submission with the same Idempotency-Key"}),
    Operation("GET", "/v1/jobs", "List jobs, newest first", "jobs", answer=JobList, errors=(400,), params=(
        Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 1000}),
        Param("cursor", "query", {"type": "string"}, "next_cursor of the previous page"),
    )),
    Operation("GET", "/v1/jobs/{id}", "A job's state and progress", "jobs", answer=JobStatus, errors=(404,),
              params=(_ID,)),
    Operation("DELETE", "/v1/jobs/{id}", "Cancel a job", "jobs", answer=JobStatus, errors=(404, 409), params=(_ID,)),
    Operation("GET", "/v1/jobs/{id}/result", "The result: 302 to a presigned URL, or the bytes with stream=1", "jobs",
              answer=_BINARY, answer_types=("audio/mpeg", "audio/wav", "application/octet-stream"),
              errors=(404, 409), extra_answers={302: "redirect to a presigned URL"},
              params=(_ID, Param("stream", "query", {"type": "string", "enum": ["0", "1", "true", "false"]}))),
    Operation("GET", "/v1/jobs/{id}/chapters", "Chapter marks of a finished job", "jobs", answer=_ANY_OBJECT,
              errors=(404, 409), params=(_ID,)),
    Operation("GET", "/v1/objects/{key}", "Serve a presigned object URL (filesystem store)", "jobs",
              answer=_BINARY, answer_types=("audio/wav", "application/json", "application/octet-stream"),
              errors=(400, 403, 404), params=(
                  Param("key", "path", {"type": "string"}, required=True),
                  Param("expires", "query", {"type": "string"}, required=True),
                  Param("sig", "query", {"type": "string"}, required=True),
              )),
    Operation("GET", "/v1/usage", "Usage: the caller's own; ?tenant=T or * for admin", "usage",
              answer=UsageAnswer, errors=(400, 403), params=(Param("tenant", "query", {"type": "string"}),)),
    Operation("GET", "/admin/topology", "Live golden metrics per route, deployment, endpoint and edge", "admin",
              answer=_ANY_OBJECT, errors=(403,)),
    Operation("PUT", "/admin/splits/{model}", "Set a weighted traffic split", "admin", body=SplitWeights,
              answer=_ANY_OBJECT, errors=(400, 403), params=(_MODEL_P,)),
    Operation("POST", "/admin/canaries", "Start an automated canary analysis", "admin", body=CanaryStart, ok=202,
              answer=_ANY_OBJECT, errors=(400, 403, 409)),
    Operation("GET", "/admin/canaries/{model}", "A canary analysis: phase, weight, log", "admin", answer=_ANY_OBJECT,
              errors=(403, 404), params=(_MODEL_P,)),
    Operation("GET", "/openapi.json", "This document", "docs", answer=_ANY_OBJECT),
    Operation("GET", "/docs", "API documentation page", "docs", answer={"type": "string"}, answer_types=("text/html",)),
)


class _Schemas:
    """JSON Schemas of types, their definitions gathered into ``components.schemas``."""

    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def of(self, tp: Any, mode: str) -> dict[str, Any]:
        if isinstance(tp, Mapping):
            return dict(tp)
        schema = TypeAdapter(tp).json_schema(mode=mode, ref_template="#/components/schemas/{model}")  # type: ignore[arg-type]
        for name, sub in schema.pop("$defs", {}).items():
            self.components.setdefault(name, sub)
        title = schema.get("title")
        if isinstance(title, str) and schema.get("type") == "object" and isinstance(tp, type):
            self.components.setdefault(title, schema)
            return {"$ref": f"#/components/schemas/{title}"}
        return schema


def _operation(op: Operation, schemas: _Schemas, scope: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"summary": op.summary, "tags": [op.tag],
                           "operationId": f"{op.method.lower()}_{op.path.strip('/').replace('/', '_').replace('{', '').replace('}', '').replace('.', '_') or 'root'}"}  # fmt: skip
    if op.params:
        out["parameters"] = [{"name": p.name, "in": p.where, "required": p.required or p.where == "path",
                              "schema": dict(p.schema), **({"description": p.description} if p.description else {})}
                             for p in op.params]  # fmt: skip
    if op.body is not None:
        body = schemas.of(op.body, "validation")
        out["requestBody"] = {"required": True, "content": {t: {"schema": body} for t in op.body_types}}
    answer: dict[str, Any] = {"description": "OK"}
    if op.answer is not None:
        schema = schemas.of(op.answer, "serialization")
        answer["content"] = {t: {"schema": schema} for t in op.answer_types}
    responses: dict[str, Any] = {str(op.ok): answer}
    for status, text in op.extra_answers.items():
        responses[str(status)] = {"description": text}
    errors = set(op.errors) | {429}
    if scope is not None:
        errors |= {401, 403}
    for status in sorted(errors):
        responses[str(status)] = {"description": _ERROR_TEXT[status],
                                  "content": {_JSON: {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}}
    out["responses"] = responses
    if scope is not None:
        out["security"] = [{"bearer": [scope]}] + ([{"api_key": [scope]}] if op.libretranslate else [])
        out["x-voxmesh-scope"] = scope
    else:
        out["security"] = []
    return out


def build_openapi(
    scopes: Mapping[tuple[str, str], str] | None = None, *, version: str = "0", server_url: str | None = None
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of :data:`OPERATIONS`."""
    scopes = scopes or {}
    schemas = _Schemas()
    schemas.of(ErrorBody, "serialization")
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, schemas, scopes.get((op.method, op.path)))
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "voxmesh", "version": version,
                 "description": "Speech synthesis (OpenAI-compatible) and translation (LibreTranslate-compatible) "
                                "behind a gateway with traffic governance. Errors are "
                                "{\"error\": {\"type\", \"message\", \"param\"}}."},
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.components.items())),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "a JWT (RS256/ES256/HS256) or an API key: Authorization: Bearer ..."},
                "api_key": {"type": "apiKey", "in": "query", "name": "api_key",
                            "description": "LibreTranslate clients send the API key as the api_key field "
                                           "(form or JSON body; OpenAPI can only name it as a parameter)"},
            },
        },
    }
    if server_url:
        doc["servers"] = [{"url": server_url}]
    return doc


def _docs_page() -> bytes:
    return files("voxmesh.api").joinpath("docs.html").read_bytes()


def setup_openapi_routes(app: web.Application, scopes: Mapping[tuple[str, str], str] | None = None) -> None:
    """Register ``GET /openapi.json`` and ``GET /docs`` (the page ships in this package: no CDN)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        ver = version("voxmesh")
    except PackageNotFoundError:
        ver = "0"
    doc = build_openapi(scopes, version=ver)
    page = _docs_page()

    async def openapi(request: web.Request) -> web.Response:
        return web.json_response(doc)

    async def docs(request: web.Request) -> web.Response:
        return web.Response(body=page, content_type="text/html", headers={
            "Content-Security-Policy": "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'",
        })  # fmt: skip

    app.router.add_get("/openapi.json", openapi)
    app.router.add_get("/docs", docs)
