"""HTTP routes for jobs (aiohttp), mounted by the gateway with :func:`setup_job_routes`.

    POST   /v1/jobs                 JSON {text, voice, model, response_format, options, webhook_url}
                                    or multipart: file (.txt/.md/.epub) + the same fields;
                                    optional ``Idempotency-Key`` header (201 new, 200 replayed)
    GET    /v1/jobs                 ?limit=&cursor=  (newest first; ``next_cursor`` to continue)
    GET    /v1/jobs/{id}            state, chunks_done/total, audio_seconds, eta_s, error
    DELETE /v1/jobs/{id}            cancel
    GET    /v1/jobs/{id}/result     302 to a presigned URL; ``?stream=1`` streams the bytes
    GET    /v1/jobs/{id}/chapters   chapter marks (start_s/end_s)
    GET    /v1/objects/{key}        serves fs/memory presigned URLs (``expires`` + ``sig``)

Bodies are read with the jobs upload limit (not aiohttp's 1 MiB default), refused with 413
past it. Every error is the JSON body of ``voxmesh.errors`` with its status.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from voxmesh.api.errors import error_response
from voxmesh.errors import InvalidRequest, NotFound, Overloaded, PayloadTooLarge, VoxmeshError
from voxmesh.jobs.idempotency import HEADER as IDEMPOTENCY_HEADER
from voxmesh.jobs.idempotency import REPLAYED_HEADER
from voxmesh.jobs.service import JobService
from voxmesh.observability.requestid import REQUEST_ID
from voxmesh.storage.objects import UrlSigner

__all__ = ["setup_job_routes"]

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_FIELDS = ("text", "voice", "model", "response_format", "options", "webhook_url")


def _unavailable(exc: Exception) -> Overloaded | None:
    """A backing store that is down or restarting (connection refused or lost, PostgreSQL
    starting up, SQLite's disk full or locked) is a 503 with Retry-After: the request may be
    retried as is. A mistake in the query or the data (integrity, programming) stays a 500."""
    from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, NotSupportedError, ProgrammingError

    if isinstance(exc, IntegrityError | ProgrammingError | DataError | NotSupportedError):
        return None
    if isinstance(exc, DBAPIError | ConnectionRefusedError):
        return Overloaded(f"the jobs database is unavailable right now ({type(exc).__name__}): retry shortly",
                          retry_after=2.0)
    return None


def _errors(handler: Handler) -> Handler:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except VoxmeshError as exc:
            return error_response(exc)
        except Exception as exc:
            unavailable = _unavailable(exc)
            if unavailable is None:
                raise
            log.warning("%s %s: %r", request.method, request.path, exc)
            return error_response(unavailable)

    return wrapped


async def _read_limited(stream: Any, limit: int) -> bytes:
    buf = bytearray()
    read = stream.read_chunk if isinstance(stream, BodyPartReader) else stream.read
    while chunk := await read(64 * 1024):
        buf += chunk
        if len(buf) > limit:
            raise PayloadTooLarge(f"upload is over the {limit}-byte limit for jobs")
    return bytes(buf)


async def _parse_create(request: web.Request, limit: int) -> dict[str, Any]:
    if request.content_type.startswith("multipart/"):
        try:
            return await _parse_multipart(request, limit)
        except (ValueError, AssertionError, KeyError, HttpProcessingError) as exc:  # multipart parser: bad framing
            raise InvalidRequest(f"malformed multipart body ({exc}): send multipart/form-data with a boundary "
                                 "and a 'file' part") from exc  # fmt: skip
    return await _parse_json(request, limit)


async def _parse_multipart(request: web.Request, limit: int) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            continue
        if part.name == "file":
            fields["filename"] = part.filename or "upload.txt"
            fields["data"] = await _read_limited(part, limit)
        elif part.name in _FIELDS:
            fields[part.name] = (await _read_limited(part, 64 * 1024)).decode("utf-8", errors="replace")
        else:
            raise InvalidRequest(f"unknown form field {part.name!r}", param=part.name)
    if isinstance(fields.get("options"), str):
        try:
            fields["options"] = json.loads(fields["options"] or "{}")
        except ValueError:
            raise InvalidRequest("'options' must be a JSON object", param="options") from None
    return fields


async def _parse_json(request: web.Request, limit: int) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise InvalidRequest("send application/json or multipart/form-data (with a 'file' part)")
    if request.content.at_eof():  # read already (the auth guard counted its characters)
        raw = await request.read()
    else:
        raw = await _read_limited(request.content, limit + 64 * 1024)
    try:
        body = json.loads(raw or b"null")
    except ValueError as exc:
        raise InvalidRequest(f"body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidRequest("body must be a JSON object")
    unknown = set(body) - set(_FIELDS)
    if unknown:
        raise InvalidRequest(f"unknown field(s) {sorted(unknown)}; allowed: {list(_FIELDS)}", param=sorted(unknown)[0])
    return body


def _tenant(request: web.Request) -> str | None:
    """The caller's tenant (``request["principal"]``, set by the gateway's guard); None where
    no guard runs (an app built without one sees every job)."""
    principal = request.get("principal")
    return None if principal is None else str(principal.tenant)


def setup_job_routes(app: web.Application, service: JobService) -> None:
    limit = service.settings.jobs.max_upload_bytes

    @_errors
    async def create(request: web.Request) -> web.StreamResponse:
        f = await _parse_create(request, limit)
        for name in ("voice", "model"):
            if name not in f:
                raise InvalidRequest(f"'{name}' is required", param=name)
        status, replayed = await service.submit(
            voice=f["voice"], model=f["model"], text=f.get("text"), filename=f.get("filename"),
            data=f.get("data"), response_format=f.get("response_format") or "wav",
            options=f.get("options"), webhook_url=f.get("webhook_url") or None,
            request_id=REQUEST_ID.get(),  # the submission's id: the runner's chunks and the webhook carry it
            idempotency_key=request.headers.get(IDEMPOTENCY_HEADER),
            **({} if (tenant := _tenant(request)) is None else {"tenant": tenant}),
        )
        headers = {"Location": f"/v1/jobs/{status.id}"}
        if replayed:
            headers[REPLAYED_HEADER] = "true"
        return web.json_response(status.to_dict(), status=200 if replayed else 201, headers=headers)

    @_errors
    async def get(request: web.Request) -> web.StreamResponse:
        return web.json_response((await service.get(request.match_info["id"], _tenant(request))).to_dict())

    @_errors
    async def list_(request: web.Request) -> web.StreamResponse:
        try:
            limit_ = int(request.query.get("limit", "20"))
        except ValueError:
            raise InvalidRequest("'limit' must be an integer", param="limit") from None
        jobs, cursor = await service.list(limit=limit_, cursor=request.query.get("cursor"), tenant=_tenant(request))
        return web.json_response({"object": "list", "data": [j.to_dict() for j in jobs], "next_cursor": cursor})

    @_errors
    async def cancel(request: web.Request) -> web.StreamResponse:
        return web.json_response((await service.cancel(request.match_info["id"], _tenant(request))).to_dict())

    @_errors
    async def result(request: web.Request) -> web.StreamResponse:
        job_id = request.match_info["id"]
        if request.query.get("stream") in ("1", "true"):
            data, ctype = await service.result(job_id, _tenant(request))
            resp = web.StreamResponse(headers={"Content-Type": ctype, "Content-Length": str(len(data))})
            await resp.prepare(request)
            for i in range(0, len(data), 256 * 1024):
                await resp.write(data[i : i + 256 * 1024])
            await resp.write_eof()
            return resp
        raise web.HTTPFound(await service.result_url(job_id, _tenant(request)))

    @_errors
    async def chapters(request: web.Request) -> web.StreamResponse:
        return web.json_response(await service.chapters(request.match_info["id"], _tenant(request)))

    @_errors
    async def objects(request: web.Request) -> web.StreamResponse:
        signer: UrlSigner | None = getattr(service.store, "signer", None)
        if signer is None:
            raise NotFound("objects are served by the object store itself (S3): use the presigned URL")
        key = request.match_info["key"]
        signer.verify(key, request.query.get("expires", ""), request.query.get("sig", ""))
        data = await service.store.get(key)
        ctype = "application/json" if key.endswith(".json") else "audio/wav" if key.endswith(".wav") else "application/octet-stream"
        return web.Response(body=data, content_type=ctype)

    app.router.add_post("/v1/jobs", create)
    app.router.add_get("/v1/jobs", list_)
    app.router.add_get("/v1/jobs/{id}", get)
    app.router.add_delete("/v1/jobs/{id}", cancel)
    app.router.add_get("/v1/jobs/{id}/result", result)
    app.router.add_get("/v1/jobs/{id}/chapters", chapters)
    app.router.add_get("/v1/objects/{key:.+}", objects)
