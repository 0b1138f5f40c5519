"""The operators' dashboard: ``GET /dashboard``, served by the gateway from the package.

A thin client (``static/``): one HTML page, one ES module per panel, no third-party asset and
no CDN (the page's Content-Security-Policy allows only this origin). The page renders the
JSON the API already serves, polled once a second (``?refresh=`` seconds to change it):

=========================  ==========================================================
/admin/topology            topology graph: client -> gateway -> deployment -> replica
                           edges with req/s, success rate, p50/p95/p99, retries, breaker
/admin/autoscaler          replicas by state over time, in-flight and queue, decisions
                           with reasons, warm pool (:mod:`.views`)
/admin/canaries/{model}    canary phase, weight and every step with its reason
/admin/stages              per-stage breakdown of the workers (:mod:`.views`)
/v1/models, /v1/jobs       playground choices; jobs (queue, progress, failures)
/v1/audio/speech,          the playground: text -> speech with an audio player,
/v1/translations           text -> translation
=========================  ==========================================================

Nothing is rendered into HTML on the server. ``setup_dashboard`` adds the routes to the
gateway's aiohttp app; the fast server relays them there like every non-hot route.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from voxmesh.errors import NotFound
from voxmesh.observability.dashboard.views import autoscaler_view, stages_view

__all__ = ["STATIC_DIR", "setup_dashboard"]

STATIC_DIR = Path(__file__).parent / "static"
_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
_CSP = ("default-src 'self'; img-src 'self' data:; media-src 'self' blob:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'")


def _assets() -> dict[str, tuple[bytes, str]]:
    out = {}
    for path in sorted(STATIC_DIR.rglob("*")):
        if path.is_file() and path.suffix in _TYPES:
            out[path.relative_to(STATIC_DIR).as_posix()] = (path.read_bytes(), _TYPES[path.suffix])
    return out


def setup_dashboard(app: web.Application, *, supervisor: Callable[[], Any],
                    autoscaler: Callable[[], Any] = lambda: None) -> None:
    """Add ``/dashboard``, its assets and the two JSON views to ``app``.

    ``supervisor`` / ``autoscaler``: how to reach them when a request comes (they start after
    the app is built); a gateway without a supervisor answers the views with empty figures."""
    assets = _assets()  # read once: the package does not change under a running server

    def _asset(name: str) -> web.Response:
        found = assets.get(name)
        if found is None:
            raise NotFound(f"no dashboard asset {name!r}")
        body, ctype = found
        return web.Response(body=body, content_type=ctype,
                            headers={"Cache-Control": "no-cache", "Content-Security-Policy": _CSP})

    async def index(request: web.Request) -> web.Response:
        return _asset("index.html")

    async def asset(request: web.Request) -> web.Response:
        return _asset(request.match_info["name"])

    async def autoscaler_json(request: web.Request) -> web.Response:
        sup = supervisor()
        if sup is None:
            return web.json_response({"deployments": {}, "events": []})
        return web.json_response(autoscaler_view(sup, autoscaler()))

    async def stages_json(request: web.Request) -> web.Response:
        sup = supervisor()
        return web.json_response(stages_view(sup.metric_texts() if sup is not None else []))

    app.router.add_get("/dashboard", index)
    app.router.add_get("/dashboard/", index)
    app.router.add_get("/dashboard/{name:[A-Za-z0-9_/.-]+}", asset)
    app.router.add_get("/admin/autoscaler", autoscaler_json)
    app.router.add_get("/admin/stages", stages_json)
