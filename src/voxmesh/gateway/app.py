"""The public API of the gateway (aiohttp), wired to the data plane.

Routes
    POST /v1/audio/speech      OpenAI-compatible; validated here, forwarded by model
    GET  /v1/models            deployments, splits and aliases
    GET  /v1/audio/voices      voices per TTS model (from the workers' /info)
    POST /translate, GET /languages, POST /detect, POST /v1/translations   -> the MT deployment
    /v1/jobs...                long-text jobs (when a job service is attached)
    GET  /healthz /readyz /metrics /dashboard
    GET  /admin/topology       live golden metrics per route, deployment, endpoint and edge
    PUT  /admin/splits/{model} {"weights": {"deployment": weight, ...}}

Model resolution: a public model name is a deployment, a split (weighted deployments) or an
alias of either. Unknown names answer 404 listing what exists.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from voxmesh.api.errors import error_middleware
from voxmesh.api.schemas import SpeechRequest, parse_body
from voxmesh.deployments import DeploymentsConfig
from voxmesh.errors import Forbidden, InvalidRequest, NotFound, UnknownModel
from voxmesh.settings import Settings

__all__ = ["Catalog", "Gateway", "build_gateway_app"]

log = logging.getLogger(__name__)

MAX_BODY = 2 * 1024 * 1024


@dataclass
class Catalog:
    """What the gateway knows about models: kind per deployment, voices, aliases, splits."""

    kinds: dict[str, str] = field(default_factory=dict)  # deployment -> tts | mt | chat
    voices: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    splits: dict[str, dict[str, float]] = field(default_factory=dict)

    @classmethod
    def from_config(cls, cfg: DeploymentsConfig, kinds: dict[str, str]) -> Catalog:
        return cls(kinds=dict(kinds), aliases=dict(cfg.aliases), splits={k: dict(v) for k, v in cfg.splits.items()})

    def public_models(self) -> list[str]:
        return sorted(set(self.kinds) | set(self.splits) | set(self.aliases))

    def resolve(self, model: str) -> str:
        """Public name -> the name the data plane routes (a deployment or a split)."""
        target = self.aliases.get(model, model)
        if target in self.kinds or target in self.splits:
            return target
        raise UnknownModel(
            f"unknown model {model!r}: available models are {', '.join(self.public_models())}",
            param="model",
        )

    def kind_of(self, routed: str) -> str:
        if routed in self.kinds:
            return self.kinds[routed]
        first = next(iter(self.splits[routed]))
        return self.kinds.get(first, "tts")


class Gateway:
    """The public API's handlers; state lives here, sockets in the data plane."""

    def __init__(
        self,
        settings: Settings,
        dataplane: Any,
        catalog: Catalog,
        *,
        extra_metrics: Callable[[], str] | None = None,
        is_ready: Callable[[], bool] | None = None,
    ) -> None:
        self.settings = settings
        self.dataplane = dataplane
        self.catalog = catalog
        self.extra_metrics = extra_metrics
        self.is_ready = is_ready or (lambda: True)
        self.started = time.time()
        for name, weights in catalog.splits.items():
            dataplane.set_split(name, weights)

    # ---- health ----------------------------------------------------------------------
    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def readyz(self, request: web.Request) -> web.Response:
        ready = self.is_ready()
        return web.json_response({"status": "ready" if ready else "starting"}, status=200 if ready else 503)

    async def metrics(self, request: web.Request) -> web.Response:
        parts = [self.dataplane.metrics_text()]
        if self.extra_metrics is not None:
            parts.append(self.extra_metrics())
        return web.Response(text="".join(parts), content_type="text/plain")

    # ---- catalog ---------------------------------------------------------------------
    async def models(self, request: web.Request) -> web.Response:
        data = []
        for name in self.catalog.public_models():
            routed = self.catalog.resolve(name)
            entry: dict[str, Any] = {
                "id": name, "object": "model", "created": int(self.started), "owned_by": "voxmesh",
                "kind": self.catalog.kind_of(routed),
            }
            if name in self.catalog.aliases:
                entry["alias_of"] = self.catalog.aliases[name]
            if routed in self.catalog.splits:
                entry["split"] = self.catalog.splits[routed]
            data.append(entry)
        return web.json_response({"object": "list", "data": data})

    async def voices(self, request: web.Request) -> web.Response:
        model = request.query.get("model")
        out: dict[str, list[dict[str, Any]]] = {}
        for dep, kind in self.catalog.kinds.items():
            if kind != "tts":
                continue
            out[dep] = self.catalog.voices.get(dep, [])
        if model is not None:
            routed = self.catalog.resolve(model)
            deps = list(self.catalog.splits.get(routed, {routed: 1.0}))
            return web.json_response({"model": model, "voices": [v for d in deps for v in out.get(d, [])]})
        return web.json_response({"models": out})

    # ---- data plane ------------------------------------------------------------------
    async def speech(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        req: SpeechRequest = parse_body(body, SpeechRequest)
        routed = self.catalog.resolve(req.model)
        if self.catalog.kind_of(routed) != "tts":
            raise InvalidRequest(f"model {req.model!r} is not a speech model", param="model")
        if req.model != routed and routed in self.catalog.kinds:
            # the worker knows its deployment name, not the alias
            data = json.loads(body)
            data["model"] = routed
            body = json.dumps(data).encode()
        return await self._forward(request, routed, "/v1/audio/speech", body)

    async def translate_proxy(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        routed = self._mt_target(request, body)
        return await self._forward(request, routed, request.path_qs, body)

    def _mt_target(self, request: web.Request, body: bytes) -> str:
        model = None
        if request.content_type == "application/json" and body:
            try:
                data = json.loads(body)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise InvalidRequest(f"request body is not valid JSON: {exc}") from exc
            if isinstance(data, dict) and isinstance(data.get("model"), str):
                model = data["model"]
        if model is not None:
            routed = self.catalog.resolve(model)
            if self.catalog.kind_of(routed) not in ("mt", "chat"):
                raise InvalidRequest(f"model {model!r} is not a translation model", param="model")
            return routed
        for dep, kind in self.catalog.kinds.items():
            if kind == "mt":
                return dep
        raise NotFound("no translation model is deployed: add a deployment with engine llamacpp")

    async def _forward(self, request: web.Request, routed: str, path: str, body: bytes) -> web.StreamResponse:
        caller = request.headers.get("X-Voxmesh-Caller", "client")
        resp: web.StreamResponse = await self.dataplane.forward(
            request, model=routed, path=path, body=body, caller=caller
        )
        return resp

    # ---- admin -----------------------------------------------------------------------
    def _check_admin(self, request: web.Request) -> None:
        token = self.settings.gateway.admin_token
        if token is None:
            if request.remote not in ("127.0.0.1", "::1"):
                raise Forbidden("admin endpoints answer only on loopback unless gateway.admin_token is set")
            return
        if request.headers.get("Authorization") != f"Bearer {token}":
            raise Forbidden("admin endpoints need 'Authorization: Bearer <gateway.admin_token>'")

    async def topology(self, request: web.Request) -> web.Response:
        return web.json_response(self.dataplane.topology())

    async def put_split(self, request: web.Request) -> web.Response:
        self._check_admin(request)
        model = request.match_info["model"]
        try:
            data = json.loads(await request.read())
            weights = {str(k): float(v) for k, v in data["weights"].items()}
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidRequest('body must be {"weights": {"deployment": number, ...}}') from exc
        unknown = set(weights) - set(self.catalog.kinds)
        if unknown:
            raise InvalidRequest(f"unknown deployments {sorted(unknown)}; known: {sorted(self.catalog.kinds)}")
        if not weights or sum(weights.values()) <= 0 or any(w < 0 for w in weights.values()):
            raise InvalidRequest("weights must be >= 0 and not all zero")
        self.dataplane.set_split(model, weights)
        self.catalog.splits[model] = weights
        log.info("split %s set to %s", model, weights)
        return web.json_response({"model": model, "weights": weights})


GATEWAY_KEY = web.AppKey("gateway", Gateway)


def build_gateway_app(gw: Gateway, *, setup: list[Callable[[web.Application], None]] | None = None) -> web.Application:
    app = web.Application(middlewares=[error_middleware], client_max_size=MAX_BODY)
    app[GATEWAY_KEY] = gw
    r = app.router
    r.add_get("/healthz", gw.healthz)
    r.add_get("/readyz", gw.readyz)
    r.add_get("/metrics", gw.metrics)
    r.add_get("/v1/models", gw.models)
    r.add_get("/v1/audio/voices", gw.voices)
    r.add_post("/v1/audio/speech", gw.speech)
    for path in ("/translate", "/detect", "/v1/translations"):
        r.add_post(path, gw.translate_proxy)
    r.add_get("/languages", gw.translate_proxy)
    r.add_get("/admin/topology", gw.topology)
    r.add_put("/admin/splits/{model}", gw.put_split)
    for hook in setup or []:
        hook(app)
    return app
