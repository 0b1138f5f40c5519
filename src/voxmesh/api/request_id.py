"""The request id on the aiohttp side (gateway app and worker): decide it, hand it on, echo it.

:func:`request_id_middleware` picks the id (:func:`voxmesh.observability.requestid.pick_request_id`),
makes it the request's ``X-Request-Id`` header (so ``DataPlane.forward`` sends it upstream),
sets :data:`~voxmesh.observability.requestid.REQUEST_ID` for the handler's log lines and puts
it on the answer; :func:`echo_request_id` (an ``on_response_prepare`` hook) covers streamed
answers whose head leaves inside the handler. Install both with :func:`install`. With OTLP
export on (:mod:`voxmesh.observability.tracing`) the middleware also wraps the request in its
server span.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from multidict import CIMultiDict

from voxmesh.observability import tracing
from voxmesh.observability.requestid import HEADER, REQUEST_ID, pick_request_id

__all__ = ["echo_request_id", "install", "request_id_middleware"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    given = request.headers.get(HEADER)
    rid = pick_request_id(given, request.headers.get("traceparent"))
    if given != rid:
        headers = CIMultiDict(request.headers)
        headers[HEADER] = rid
        # keep what an outer middleware changed (the fast path's relayed peer address)
        request = request.clone(headers=headers, remote=request.remote or "", scheme=request.scheme,
                                host=request.host)
    token = REQUEST_ID.set(rid)
    try:
        if tracing.TRACING is None or request.path in tracing.UNTRACED_PATHS:
            response = await handler(request)
        else:
            response = await _traced(tracing.TRACING, request, handler, rid)
    finally:
        REQUEST_ID.reset(token)
    if not response.prepared:
        response.headers[HEADER] = rid
    return response


async def _traced(tracer: tracing.Tracing, request: web.Request, handler: Handler, rid: str) -> web.StreamResponse:
    """The request in a SERVER span (OTLP export on): the one tracing hook of an aiohttp server."""
    resource = request.match_info.route.resource
    route = request.path if resource is None else resource.canonical
    span = tracer.server_span(f"{request.method} {route}", traceparent=request.headers.get("traceparent"),
                              request_id=rid, attributes={"http.request.method": request.method, "http.route": route})
    token = tracing.CURRENT.set(span)
    status: int | None = None
    error: BaseException | None = None
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except BaseException as exc:
        error = exc
        raise
    finally:
        tracing.CURRENT.reset(token)
        principal = request.get("principal")
        tracer.end(span, status, error, {"voxmesh.tenant": None if principal is None else str(principal.tenant)})


async def echo_request_id(request: web.Request, response: web.StreamResponse) -> None:
    rid = request.headers.get(HEADER)
    if rid is not None and HEADER not in response.headers:
        response.headers[HEADER] = rid


def install(app: web.Application) -> None:
    """Outermost middleware (so error answers carry the id too) and the prepare hook."""
    app.middlewares.insert(0, request_id_middleware)
    app.on_response_prepare.append(echo_request_id)
