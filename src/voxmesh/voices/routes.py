"""HTTP routes of enrolled voices (aiohttp, on the gateway's app).

    POST   /v1/audio/voices        multipart: file (3-30 s wav/mp3/flac/ogg), name, consent=true,
                                   optional transcript, language, model (default: the first
                                   kokoro deployment) -> 202 with the voice (status "fitting")
    GET    /v1/audio/voices/{id}   the voice, with fit progress and its similarity report
    DELETE /v1/audio/voices/{id}   removes the audio, the embedding and the fitted voice
    (GET /v1/audio/voices lists stock voices per model and, through :func:`enrolled_listing`,
    the caller's enrolled ones.)

The caller's tenant is ``request["principal"].tenant`` when authentication put a principal
there, else ``"default"``. Scopes (voices:write / voices:read) are declared by the auth layer.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from voxmesh.errors import InvalidRequest, PayloadTooLarge
from voxmesh.voices.service import Enrolment, VoiceService, is_enrolled_id

__all__ = ["VOICES_KEY", "enrolled_listing", "resolve_speech_body", "setup_voice_routes", "tenant_of"]

VOICES_KEY = web.AppKey("voices", VoiceService)
MAX_UPLOAD = 12 * 1024 * 1024
_TEXT_FIELDS = {"name", "transcript", "language", "consent", "model"}


def tenant_of(request: web.Request) -> str:
    principal = request.get("principal")
    tenant = getattr(principal, "tenant", None)
    return str(tenant) if tenant else "default"


async def _parse_form(request: web.Request, default_model: str | None) -> Enrolment:
    if not request.content_type.startswith("multipart/"):
        raise InvalidRequest("send multipart/form-data with fields file, name and consent=true")
    try:
        return await _read_form(request, default_model)
    except (ValueError, AssertionError, KeyError, UnicodeError, HttpProcessingError) as exc:  # bad framing
        raise InvalidRequest(f"malformed multipart body ({type(exc).__name__}): send multipart/form-data with a "
                             "boundary and the fields file, name and consent=true") from exc


async def _read_form(request: web.Request, default_model: str | None) -> Enrolment:
    reader = await request.multipart()
    fields: dict[str, str] = {}
    audio: bytes | None = None
    while True:
        part: Any = await reader.next()
        if part is None:
            break
        name = part.name
        if name == "file":
            data = bytearray()
            while chunk := await part.read_chunk(1 << 16):
                data += chunk
                if len(data) > MAX_UPLOAD:
                    raise PayloadTooLarge(f"audio file is larger than {MAX_UPLOAD} bytes", param="file")
            audio = bytes(data)
        elif name in _TEXT_FIELDS:
            fields[name] = (await part.read(decode=True)).decode("utf-8", "replace")[:4000]
        else:
            raise InvalidRequest(f"unknown form field {name!r}: use file, name, consent, transcript, language, model")
    if audio is None:
        raise InvalidRequest("missing form field 'file' (3-30 s of speech: wav, mp3, flac or ogg)", param="file")
    if "name" not in fields:
        raise InvalidRequest("missing form field 'name'", param="name")
    model = fields.get("model") or default_model
    if model is None:
        raise InvalidRequest("no deployment takes enrolled voices (kokoro)", param="model")
    return Enrolment(name=fields["name"], model=model, audio=audio,
                     consent=fields.get("consent", "").strip().lower() in ("true", "1", "yes"),
                     transcript=fields.get("transcript") or None, language=fields.get("language") or None)


def setup_voice_routes(app: web.Application, service: VoiceService) -> None:
    app[VOICES_KEY] = service

    async def create(request: web.Request) -> web.Response:
        models = service.models()
        req = await _parse_form(request, models[0] if models else None)
        row = await service.create(tenant_of(request), req)
        return web.json_response(row.public(), status=202)

    async def get(request: web.Request) -> web.Response:
        row = await service.get(tenant_of(request), request.match_info["voice_id"])
        return web.json_response(row.public())

    async def delete(request: web.Request) -> web.Response:
        row = await service.delete(tenant_of(request), request.match_info["voice_id"])
        return web.json_response({"id": row.id, "object": "voice", "deleted": True})

    app.router.add_post("/v1/audio/voices", create)
    app.router.add_get("/v1/audio/voices/{voice_id}", get)
    app.router.add_delete("/v1/audio/voices/{voice_id}", delete)


async def enrolled_listing(request: web.Request, model_deployments: list[str] | None) -> list[dict[str, Any]]:
    """The caller's enrolled voices (all, or those of the given deployments), for the listing."""
    service = request.app.get(VOICES_KEY)
    if service is None:
        return []
    rows = await service.list(tenant_of(request))
    return [{"id": r.id, "name": r.name, "model": r.model, "languages": [r.language] if r.language else [],
             "kind": "enrolled", "status": r.state.value}
            for r in rows if model_deployments is None or r.model in model_deployments]


async def resolve_speech_body(request: web.Request, voice: object, body: bytes) -> bytes:
    """``body`` with an enrolled voice id replaced by its fitted style (unchanged otherwise)."""
    service = request.app.get(VOICES_KEY)
    if service is None or not is_enrolled_id(voice):
        return body
    fields = await service.resolve(tenant_of(request), str(voice))
    data = json.loads(body)
    data["voice"] = "default"
    data.update(fields)
    return json.dumps(data).encode()
