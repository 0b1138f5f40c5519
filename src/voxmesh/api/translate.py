"""Translation routes: LibreTranslate-compatible ``/translate``, ``/languages``, ``/detect`` and
voxmesh's ``/v1/translations`` (JSON, optional server-sent events).

LibreTranslate compatibility (what its clients, e.g. ``libretranslatepy``, rely on):
``POST /translate`` takes a JSON body or a form (url-encoded or multipart) with ``q`` (a string or
a list), ``source`` (a code or ``auto``), ``target``, ``format`` (``text`` | ``html``), ``api_key``
(accepted; authentication belongs to the gateway) and ``alternatives`` (answered with an empty
list: one translation per text). The answer is ``{"translatedText", "detectedLanguage"?}`` with
lists when ``q`` was a list. ``GET /languages`` lists ``{code, name, targets}``; ``POST /detect``
answers ``[{"confidence", "language"}]``.

``POST /v1/translations`` takes ``{model?, input, source?, target, format?, glossary?, context?,
stream?, temperature?}``. With ``stream: true`` the answer is ``text/event-stream``: ``event: piece``
(``{"index", "text"}``) as text is generated, then ``event: done`` with the full result, or
``event: error`` with the error body.

Errors are voxmesh's JSON body (``{"error": {"type", "message", "param"}}``) with the error's
status; nothing here answers a stack trace.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

from aiohttp import web

from voxmesh import errors
from voxmesh.mt.prompts import GREEDY, HYMT_SAMPLING, SamplingParams
from voxmesh.mt.service import TranslationRequest, TranslationResult, Translator
from voxmesh.mt.streaming import Piece

__all__ = ["TRANSLATOR_KEY", "setup_translate_routes"]

log = logging.getLogger(__name__)

TRANSLATOR_KEY: web.AppKey[Translator] = web.AppKey("voxmesh.translator", Translator)
_MAX_GLOSSARY = 200

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=json.dumps(data, ensure_ascii=False).encode(),
                        content_type="application/json")


def _error(exc: errors.VoxmeshError) -> web.Response:
    return web.Response(status=exc.status, body=json.dumps(exc.to_dict()).encode(),
                        content_type="application/json", headers=exc.headers())


def _guarded(handler: Handler) -> Handler:
    """Every failure becomes a JSON error (the app's error middleware may not be installed)."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except errors.VoxmeshError as exc:
            return _error(exc)
        except web.HTTPRequestEntityTooLarge:
            return _error(errors.PayloadTooLarge("request body too large: send less text per request"))
        except (ConnectionResetError, web.HTTPException):
            raise
        except Exception:
            log.exception("translate route %s failed", request.path)
            return _error(errors.EngineError("translation failed (logged); retry or report it"))

    return wrapped


async def _body(request: web.Request) -> dict[str, Any]:
    """The parameters from a JSON body or a form, as LibreTranslate accepts both."""
    ctype = request.content_type
    if ctype == "application/json":
        try:
            data = await request.json()
        except ValueError as exc:
            raise errors.InvalidRequest(f"body is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise errors.InvalidRequest("the JSON body must be an object")
        return data
    if ctype in ("application/x-www-form-urlencoded", "multipart/form-data") or request.can_read_body:
        form = await request.post()
        out: dict[str, Any] = {}
        for key in form:
            values = [v for v in form.getall(key) if isinstance(v, str)]
            if values:
                out[key] = values if len(values) > 1 else values[0]
        return out
    return dict(request.query)


def _texts(value: Any, param: str) -> tuple[tuple[str, ...], bool]:
    if isinstance(value, str):
        return (value,), False
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value), True
    raise errors.InvalidRequest(f"`{param}` must be a string or a list of strings", param=param)


def _required(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise errors.InvalidRequest(f"missing parameter `{key}`", param=key)
    return value


def _format(data: Mapping[str, Any]) -> str:
    fmt = data.get("format") or "text"
    if fmt not in ("text", "html"):
        raise errors.UnsupportedFormat(f"format {fmt!r} is not supported: use text or html", param="format")
    return str(fmt)


def _glossary(value: Any) -> dict[str, str] | None:
    if value is None:
        return None
    items: list[tuple[Any, Any]]
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = [(v.get("source"), v.get("target")) if isinstance(v, dict) else tuple(v) if
                 isinstance(v, list | tuple) and len(v) == 2 else (None, None) for v in value]
    else:
        items = [(None, None)]
    if len(items) > _MAX_GLOSSARY or not all(isinstance(s, str) and isinstance(t, str) for s, t in items):
        raise errors.InvalidRequest(f"`glossary` must map source terms to target terms (at most {_MAX_GLOSSARY})",
                                    param="glossary")
    return dict(items)


def _sampling(data: Mapping[str, Any]) -> SamplingParams | None:
    t = data.get("temperature")
    if t is None:
        return None
    if not isinstance(t, int | float) or isinstance(t, bool) or not 0 <= t <= 2:
        raise errors.InvalidRequest("`temperature` must be a number in [0, 2]", param="temperature")
    return GREEDY if t == 0 else replace(HYMT_SAMPLING, temperature=float(t))


def _detected_json(result: TranslationResult, i: int) -> dict[str, Any]:
    d = result.detected[i] if i < len(result.detected) else None
    return {"confidence": d.confidence, "language": d.language} if d else {"confidence": 0.0, "language": "en"}


def setup_translate_routes(app: web.Application, translator: Translator) -> None:
    """Add the translation routes to ``app``, served by ``translator``."""
    app[TRANSLATOR_KEY] = translator

    @_guarded
    async def translate(request: web.Request) -> web.StreamResponse:
        data = await _body(request)
        if "q" not in data:
            raise errors.InvalidRequest("missing parameter `q`", param="q")
        texts, many = _texts(data["q"], "q")
        req = TranslationRequest(texts, str(data.get("source") or "auto"), _required(data, "target"),
                                 _format(data))  # type: ignore[arg-type]
        result = await translator.translate(req)
        body: dict[str, Any] = {"translatedText": result.translations if many else result.translations[0]}
        if result.detected:
            det = [_detected_json(result, i) for i in range(len(texts))]
            body["detectedLanguage"] = det if many else det[0]
        try:
            wanted = int(data.get("alternatives") or 0)
        except (TypeError, ValueError):
            wanted = 0
        if wanted > 0:
            body["alternatives"] = [[] for _ in texts] if many else []
        return _json(body)

    @_guarded
    async def languages(request: web.Request) -> web.StreamResponse:
        langs = await translator.languages()
        return _json([{"code": lang.code, "name": lang.name, "targets": list(langs.targets(lang.code))}
                      for lang in langs])

    @_guarded
    async def detect(request: web.Request) -> web.StreamResponse:
        data = await _body(request)
        texts, _ = _texts(data.get("q"), "q")
        found = await translator.detect(" ".join(texts))
        return _json([{"confidence": d.confidence, "language": d.language} for d in found])

    @_guarded
    async def translations(request: web.Request) -> web.StreamResponse:
        if request.content_type != "application/json":
            raise errors.InvalidRequest("send a JSON body (Content-Type: application/json)")
        data = await _body(request)
        if "input" not in data:
            raise errors.InvalidRequest("missing parameter `input`", param="input")
        texts, _ = _texts(data["input"], "input")
        context = data.get("context")
        if context is not None and not isinstance(context, str):
            raise errors.InvalidRequest("`context` must be a string", param="context")
        model = data.get("model")
        req = TranslationRequest(texts, str(data.get("source") or "auto"), _required(data, "target"),
                                 _format(data), _glossary(data.get("glossary")), context,  # type: ignore[arg-type]
                                 model if isinstance(model, str) else None, _sampling(data))
        if not data.get("stream"):
            return _json((await translator.translate(req)).to_json())
        return await _stream(request, translator, req)

    app.router.add_post("/translate", translate)
    app.router.add_get("/languages", languages)
    app.router.add_post("/languages", languages)
    app.router.add_post("/detect", detect)
    app.router.add_post("/v1/translations", translations)


async def _stream(request: web.Request, translator: Translator, req: TranslationRequest) -> web.StreamResponse:
    events = translator.stream(req)
    # Pull the first event before committing to 200: validation errors still answer 4xx.
    try:
        first = await anext(events)
    except StopAsyncIteration:
        raise errors.EngineError("the engine produced nothing") from None
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                       "X-Accel-Buffering": "no"})
    await resp.prepare(request)

    async def send(event: str, data: Any) -> None:
        await resp.write(f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode())

    async def emit(item: Piece | TranslationResult) -> None:
        if isinstance(item, Piece):
            await send("piece", {"index": item.index, "text": item.text})
        else:
            await send("done", item.to_json())

    try:
        await emit(first)
        async for item in events:
            await emit(item)
    except ConnectionResetError:  # the client left: closing `events` cancels its generations
        return resp
    except errors.VoxmeshError as exc:
        await send("error", {"error": {**exc.to_dict()["error"], "status": exc.status}})  # type: ignore[dict-item]
    except Exception:
        log.exception("translation stream failed")
        await send("error", {"error": {"type": "engine_error", "message": "translation failed (logged)",
                                       "param": None, "status": 500}})
    finally:
        await events.aclose()  # type: ignore[attr-defined]
    await resp.write_eof()
    return resp

