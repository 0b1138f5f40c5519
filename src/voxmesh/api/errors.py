"""Turn every failure into the JSON error body; never a stack trace.

``error_middleware`` is installed on every aiohttp app voxmesh serves (gateway and worker).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from voxmesh.errors import VoxmeshError

__all__ = ["error_middleware", "error_response"]

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_HTTP_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "payload_too_large",
    415: "invalid_request_error",
    429: "rate_limit_error",
}


def error_response(exc: VoxmeshError) -> web.Response:
    return web.Response(
        status=exc.status,
        body=json.dumps(exc.to_dict()).encode(),
        content_type="application/json",
        headers=exc.headers(),
    )


def _http_error(exc: web.HTTPException, request: web.Request) -> web.Response:
    if exc.status == 404:
        message = f"no route {request.method} {request.path}: see GET /v1/models and the API docs"
    elif exc.status == 405:
        message = f"method {request.method} is not allowed on {request.path}"
    elif exc.status == 413:
        message = "request body too large: send a smaller body (or upload a file to /v1/jobs)"
    else:
        message = exc.text or exc.reason
    body = {"error": {"type": _HTTP_TYPES.get(exc.status, "http_error"), "message": message, "param": None}}
    return web.Response(status=exc.status, body=json.dumps(body).encode(), content_type="application/json")


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except VoxmeshError as exc:
        return error_response(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _http_error(exc, request)
    except (ConnectionResetError, web.HTTPClientError):
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        body = {"error": {"type": "internal_error", "message": "internal error (logged)", "param": None}}
        return web.Response(status=500, body=json.dumps(body).encode(), content_type="application/json")
