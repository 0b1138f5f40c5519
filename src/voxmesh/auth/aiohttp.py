"""The guard as aiohttp middleware: every route of the gateway's aiohttp app goes through it.

Sets ``request["principal"]``; on admin routes records the answer's status in the audit log;
adds the admission hooks' ``call.response_headers`` to the answer (``install_guard``).
The LibreTranslate ``api_key`` is read from the query or the (JSON or url-encoded) body of
translation routes only, and only when no ``Authorization`` header came.
"""

from __future__ import annotations

import warnings
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware
from aiohttp.web_exceptions import NotAppKeyWarning

from voxmesh.api.errors import error_response
from voxmesh.auth.guard import ON_BEHALF_HEADER, Call, Guard, api_key_from_body
from voxmesh.auth.principal import Principal
from voxmesh.auth.scopes import ADMIN, scope_for
from voxmesh.errors import VoxmeshError

__all__ = ["auth_middleware", "install_guard"]

_EXTRA = web.RequestKey("voxmesh_response_headers", list)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def route_template(request: web.Request) -> str | None:
    resource = request.match_info.route.resource
    return None if resource is None else resource.canonical


_warned = False


def _set_principal(request: web.Request, principal: Principal) -> None:
    """``request["principal"]``: a plain string key is the interface other modules read.
    aiohttp warns once per process about string keys (NotAppKeyWarning); that one warning
    is silenced here, after which aiohttp stays quiet by itself."""
    global _warned
    if _warned:
        request["principal"] = principal
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotAppKeyWarning)
        request["principal"] = principal
    _warned = True


# bodies the admission hooks count characters in (speech, translation, JSON jobs)
_COSTED_TYPES = ("application/json", "application/x-www-form-urlencoded")
_COSTED_MAX = 2 * 1024 * 1024  # larger bodies (big JSON jobs) stream to their route uncounted


def auth_middleware(guard: Guard) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        template = route_template(request)
        scope = scope_for(request.method, template)
        authorization = request.headers.get("Authorization")
        api_key = None
        if authorization is None and guard.wants_body_key(scope):
            api_key = request.query.get("api_key")
            if api_key is None and request.body_exists:
                api_key = api_key_from_body(request.content_type, await request.read())
        body, ctype = b"", request.content_type
        if ctype in _COSTED_TYPES and request.body_exists and (request.content_length or 0) <= _COSTED_MAX:
            body = await request.read()  # cached: the handler reads the same bytes
        call = Call(request.method, template, request.path, request.remote, authorization, api_key, body, ctype,
                    request.headers.get(ON_BEHALF_HEADER))
        # admission hooks' headers: added here to what the handler returns, or when a streamed
        # answer is prepared in the handler (on_response_prepare sees this request)
        request[_EXTRA] = call.response_headers
        try:
            principal = await guard.check(call, scope)
        except VoxmeshError as exc:
            if not call.response_headers:
                raise
            return _with(error_response(exc), call)
        _set_principal(request, principal)
        if scope != ADMIN:
            try:
                resp = _with(await handler(request), call)
            except VoxmeshError as exc:
                if not call.response_headers:
                    raise
                return _with(error_response(exc), call)
            if guard.settle_hooks:
                answer = getattr(resp, "body", None)
                sent = resp.body_length if resp.prepared else len(answer) if isinstance(answer, bytes) else 0
                await guard.settle(principal, call, resp.status, resp.headers, sent)
            return resp
        try:
            resp = await handler(request)
        except VoxmeshError as exc:
            guard.record_admin(principal, call, exc.status)
            raise
        except web.HTTPException as exc:
            guard.record_admin(principal, call, exc.status)
            raise
        guard.record_admin(principal, call, resp.status)
        return _with(resp, call)

    return middleware


def _with(resp: web.StreamResponse, call: Call) -> web.StreamResponse:
    if not resp.prepared:
        for name, value in call.response_headers:
            resp.headers[name] = value
    return resp


async def _add_headers(request: web.BaseRequest, response: web.StreamResponse) -> None:
    for name, value in request.get(_EXTRA, ()):
        response.headers[name] = value


def install_guard(app: web.Application, guard: Guard) -> None:
    """The guard's middleware (after any already installed) and its response headers."""
    app.middlewares.append(auth_middleware(guard))
    app.on_response_prepare.append(_add_headers)
