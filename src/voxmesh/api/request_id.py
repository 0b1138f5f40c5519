"""The request id on the aiohttp side (gateway app and worker): decide it, hand it on, echo it.

:func:`request_id_middleware` picks the id (:func:`voxmesh.observability.requestid.pick_request_id`),
makes it the request's ``X-Request-Id`` header (so ``DataPlane.forward`` sends it upstream),
sets :data:`~voxmesh.observability.requestid.REQUEST_ID` for the handler's log lines and puts
it on the answer; :func:`echo_request_id` (an ``on_response_prepare`` hook) covers streamed
answers whose head leaves inside the handler. Install both with :func:`install`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from multidict import CIMultiDict

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
        response = await handler(request)
    finally:
        REQUEST_ID.reset(token)
    if not response.prepared:
        response.headers[HEADER] = rid
    return response


async def echo_request_id(request: web.Request, response: web.StreamResponse) -> None:
    rid = request.headers.get(HEADER)
    if rid is not None and HEADER not in response.headers:
        response.headers[HEADER] = rid


def install(app: web.Application) -> None:
    """Outermost middleware (so error answers carry the id too) and the prepare hook."""
    app.middlewares.insert(0, request_id_middleware)
    app.on_response_prepare.append(echo_request_id)
