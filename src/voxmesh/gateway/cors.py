"""CORS: off by default; ``VOXMESH_HARDENING__CORS_ORIGINS`` lists the origins a browser may call from.

:class:`CorsPolicy` is pure: it says which headers an answer gets for a request's ``Origin``
and answers preflights. :func:`cors_middleware` applies it on the aiohttp app; the fast path
adds :meth:`CorsPolicy.headers_for` to its hot answers, so both servers behave alike.

Rules
    * no origins configured: no CORS header ever, preflights are not answered (405 from the
      router), so browsers block cross-origin calls;
    * ``"*"`` allows any origin (``Access-Control-Allow-Origin: *``, no credentials);
    * otherwise an exact ``scheme://host[:port]`` match echoes the origin with ``Vary: Origin``;
    * a preflight (``OPTIONS`` with ``Access-Control-Request-Method``) from an allowed origin
      gets 204 with the methods and the requested headers; from another origin, 403.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web
from aiohttp.typedefs import Middleware

__all__ = ["CorsPolicy", "cors_middleware"]

_METHODS = "GET, POST, PUT, DELETE, OPTIONS"
_EXPOSE = ("Retry-After, Server-Timing, Location, X-Request-Id, x-ratelimit-limit-requests, "
           "x-ratelimit-remaining-requests, x-ratelimit-reset-requests, x-ratelimit-limit-tokens, "
           "x-ratelimit-remaining-tokens, x-ratelimit-reset-tokens")  # fmt: skip
_SAFE_HEADER = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")


class CorsPolicy:
    def __init__(self, origins: Iterable[str]) -> None:
        cleaned = [o.strip().rstrip("/") for o in origins if o.strip()]
        self.any = "*" in cleaned
        self.origins = frozenset(o.lower() for o in cleaned if o != "*")

    @property
    def enabled(self) -> bool:
        return self.any or bool(self.origins)

    def allows(self, origin: str | None) -> bool:
        return origin is not None and (self.any or origin.lower() in self.origins)

    def headers_for(self, origin: str | None) -> list[tuple[str, str]]:
        """Headers for an actual (non-preflight) answer."""
        if not self.allows(origin):
            return []
        assert origin is not None
        if self.any:
            return [("Access-Control-Allow-Origin", "*"), ("Access-Control-Expose-Headers", _EXPOSE)]
        return [("Access-Control-Allow-Origin", origin), ("Vary", "Origin"),
                ("Access-Control-Expose-Headers", _EXPOSE)]  # fmt: skip

    def preflight(self, origin: str | None, requested_headers: str | None) -> tuple[int, list[tuple[str, str]]]:
        """Status and headers of the answer to a preflight."""
        if not self.allows(origin):
            return 403, []
        asked = [h.strip().lower() for h in (requested_headers or "").split(",") if h.strip()]
        allowed = ", ".join(h for h in asked if set(h) <= _SAFE_HEADER) or "Authorization, Content-Type"
        headers = [h for h in self.headers_for(origin) if h[0] != "Access-Control-Expose-Headers"]
        return 204, [*headers, ("Access-Control-Allow-Methods", _METHODS),
                     ("Access-Control-Allow-Headers", allowed), ("Access-Control-Max-Age", "600")]  # fmt: skip


_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_FORBIDDEN = json.dumps({"error": {"type": "permission_error", "param": None,
                                   "message": "this origin is not allowed: add it to hardening.cors_origins"}})


def cors_middleware(policy: CorsPolicy) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: _Handler) -> web.StreamResponse:
        if not policy.enabled:
            return await handler(request)
        origin = request.headers.get("Origin")
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            status, headers = policy.preflight(origin, request.headers.get("Access-Control-Request-Headers"))
            if status != 204:
                return web.Response(status=status, text=_FORBIDDEN, content_type="application/json")
            return web.Response(status=204, headers=headers)
        resp = await handler(request)
        if not resp.prepared:
            for name, value in policy.headers_for(origin):
                resp.headers[name] = value
        return resp

    return middleware
