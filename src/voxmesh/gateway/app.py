"""The public API of the gateway (aiohttp), wired to the data plane.

Routes
    POST /v1/audio/speech      OpenAI-compatible; validated here, forwarded by model
    GET  /v1/models            deployments, splits and aliases
    GET  /v1/audio/voices      voices per TTS model (from the workers' /info)
    POST /translate, GET /languages, POST /detect, POST /v1/translations   -> the MT deployment
    POST /v1/chat/completions  -> a chat deployment by model (e.g. an external vLLM/SGLang server)
    /v1/jobs...                long-text jobs (when a job service is attached)
    GET  /healthz /readyz /metrics /dashboard
    Who may call what: voxmesh.auth (the guard's middleware here, the route table in
    voxmesh.auth.scopes); admin routes need the admin scope.
    GET  /admin/topology       live golden metrics per route, deployment, endpoint and edge
    PUT  /admin/splits/{model} {"weights": {"deployment": weight, ...}}
    POST /admin/canaries       {"model", "primary", "canary", ...CanaryConfig fields}: start an
                               automated canary analysis (Flagger-like: promote step by step,
                               roll back to 0 % on failed checks)
    GET  /admin/canaries/{model}  phase, weight and the log of every step
    GET  /v1/usage             usage per tenant (voxmesh.tenancy.http)
    GET  /openapi.json /docs   the OpenAPI 3.1 document and its page (voxmesh.api.openapi)

Model resolution: a public model name is a deployment, a split (weighted deployments) or an
alias of either. Unknown names answer 404 listing what exists.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from voxmesh.api.errors import error_middleware
from voxmesh.api.schemas import SpeechRequest, parse_body
from voxmesh.auth.aiohttp import install_guard
from voxmesh.auth.guard import Guard
from voxmesh.auth.scopes import ROUTES
from voxmesh.deployments import DeploymentsConfig
from voxmesh.errors import Conflict, InvalidRequest, NotFound, UnknownModel
from voxmesh.gateway.canary import CanaryConfig, CanaryPhase, CanaryState
from voxmesh.gateway.canary_loop import CanaryLoop
from voxmesh.settings import Settings
from voxmesh.tenancy import Admission, build_admission

__all__ = ["GATEWAY_KEY", "Catalog", "Gateway", "build_gateway_app", "caller_label"]

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

    def mt_target(self, content_type: str, body: bytes) -> str:
        """Where a translation request goes: its JSON ``model`` if any, else the first MT deployment."""
        model = None
        if content_type == "application/json" and body:
            try:
                data = json.loads(body)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise InvalidRequest(f"request body is not valid JSON: {exc}") from exc
            if isinstance(data, dict) and isinstance(data.get("model"), str):
                model = data["model"]
        if model is not None:
            routed = self.resolve(model)
            if self.kind_of(routed) not in ("mt", "chat"):
                raise InvalidRequest(f"model {model!r} is not a translation model", param="model")
            return routed
        for dep, kind in self.kinds.items():
            if kind == "mt":
                return dep
        raise NotFound("no translation model is deployed: add a deployment with engine llamacpp")

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
        activate: Callable[[str], Awaitable[None]] | None = None,
        guard: Guard | None = None,
        admission: Admission | None = None,
    ) -> None:
        self.settings = settings
        # who may call which route, for both servers (voxmesh.auth.guard); without a store,
        # API keys are refused (tests and embedders that build a Gateway by hand)
        self.guard = guard or Guard(settings)
        self.dataplane = dataplane
        self.catalog = catalog
        self.extra_metrics = extra_metrics
        self.is_ready = is_ready or (lambda: True)
        self.activate = activate  # scale-from-zero hook: waits for a first replica
        # rate limits, quotas and usage per tenant (voxmesh.tenancy): admission.admit(tenant, route, cost)
        self.admission = admission if admission is not None else build_admission(settings.limits)
        self.started = time.time()
        self.canaries: dict[str, CanaryState] = {}
        self._canary_tasks: dict[str, asyncio.Task[None]] = {}
        for name, weights in catalog.splits.items():
            dataplane.set_split(name, weights)

    # the canary loop's view of the plane: splits change here and in the catalog together
    def set_split(self, model: str, weights: dict[str, float]) -> None:
        self.dataplane.set_split(model, weights)
        self.catalog.splits[model] = dict(weights)

    @property
    def golden(self) -> Any:
        return self.dataplane.golden

    # ---- health ----------------------------------------------------------------------
    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def readyz(self, request: web.Request) -> web.Response:
        ready = self.is_ready()
        return web.json_response({"status": "ready" if ready else "starting"}, status=200 if ready else 503)

    async def metrics(self, request: web.Request) -> web.Response:
        parts = [self.dataplane.metrics_text(), self.guard.metrics_text()]
        if self.extra_metrics is not None:
            parts.append(self.extra_metrics())
        parts.append(self.admission.meter.metrics_text())
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
        from voxmesh.voices.routes import enrolled_listing  # the caller's enrolled voices (voices branch)

        if model is not None:
            routed = self.catalog.resolve(model)
            deps = list(self.catalog.splits.get(routed, {routed: 1.0}))
            enrolled = await enrolled_listing(request, deps)
            return web.json_response({"model": model, "voices": [v for d in deps for v in out.get(d, [])] + enrolled})
        return web.json_response({"models": out, "enrolled": await enrolled_listing(request, None)})

    # ---- data plane ------------------------------------------------------------------
    async def speech(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        req: SpeechRequest = parse_body(body, SpeechRequest)
        routed = self.catalog.resolve(req.model)
        if self.catalog.kind_of(routed) != "tts":
            raise InvalidRequest(f"model {req.model!r} is not a speech model", param="model")
        from voxmesh.voices.routes import resolve_speech_body  # enrolled voice id -> fitted style

        body = await resolve_speech_body(request, req.voice, body)
        return await self._forward(request, routed, "/v1/audio/speech", body)

    async def translate_proxy(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        routed = self.catalog.mt_target(request.content_type, body)
        return await self._forward(request, routed, request.path_qs, body)

    async def _forward(self, request: web.Request, routed: str, path: str, body: bytes) -> web.StreamResponse:
        caller = caller_label(request.headers.get("X-Voxmesh-Caller"), request.remote)
        if self.activate is not None and routed in self.catalog.kinds:
            await self.activate(routed)
        resp: web.StreamResponse = await self.dataplane.forward(
            request, model=routed, path=path, body=body, caller=caller
        )
        return resp

    # ---- admin -----------------------------------------------------------------------
    async def topology(self, request: web.Request) -> web.Response:
        return web.json_response(self.dataplane.topology())

    async def put_split(self, request: web.Request) -> web.Response:
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
        self.set_split(model, weights)
        log.info("split %s set to %s", model, weights)
        return web.json_response({"model": model, "weights": weights})

    async def start_canary(self, request: web.Request) -> web.Response:
        try:
            data = json.loads(await request.read())
            model, primary, canary = str(data.pop("model")), str(data.pop("primary")), str(data.pop("canary"))
            config = CanaryConfig(**data)
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            fields = ", ".join(f.name for f in dataclasses.fields(CanaryConfig))
            raise InvalidRequest(f"body must be {{model, primary, canary}} plus optional {fields}: {exc}") from exc
        for dep in (primary, canary):
            if dep not in self.catalog.kinds:
                raise InvalidRequest(f"unknown deployment {dep!r}; known: {sorted(self.catalog.kinds)}")
        running = self._canary_tasks.get(model)
        if running is not None and not running.done():
            raise Conflict(f"a canary analysis for {model!r} is already running: GET /admin/canaries/{model}")
        self.set_split(model, {primary: 100.0, canary: 0.0})
        loop = CanaryLoop(self, model=model, primary=primary, canary=canary, config=config)
        self.canaries[model] = CanaryState()
        self._canary_tasks[model] = asyncio.ensure_future(self._run_canary(model, loop, config))
        return web.json_response({"model": model, "status": "started"}, status=202)

    async def _run_canary(self, model: str, loop: CanaryLoop, config: CanaryConfig) -> None:
        state = self.canaries[model]
        every = min(1.0, config.interval_s / 4)
        while state.phase not in (CanaryPhase.PROMOTED, CanaryPhase.ROLLED_BACK):
            try:
                _, state = loop.step(state)
            except Exception:
                log.exception("canary step for %s failed", model)
            self.canaries[model] = state
            await asyncio.sleep(every)
        log.info("canary %s ended: %s at %.0f%%", model, state.phase.value, state.weight)

    async def get_canary(self, request: web.Request) -> web.Response:
        model = request.match_info["model"]
        state = self.canaries.get(model)
        if state is None:
            raise NotFound(f"no canary analysis for {model!r}: start one with POST /admin/canaries")
        return web.json_response({
            "model": model, "phase": state.phase.value, "weight": state.weight,
            "failed_checks": state.failed_checks,
            "log": [{**dataclasses.asdict(e), "decision": e.decision.value} for e in state.log],
        })

    async def close(self) -> None:
        for task in self._canary_tasks.values():
            task.cancel()
        await self.admission.close()


GATEWAY_KEY = web.AppKey("gateway", Gateway)
_CALLER = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")


def caller_label(header: str | None, remote: str | None) -> str:
    """The edge's caller label: voxmesh's own components on loopback name themselves
    (``X-Voxmesh-Caller``: jobs-runner, worker-...); anyone else is "client", so a client
    cannot create unbounded metric series."""
    if header and remote in ("127.0.0.1", "::1") and _CALLER.match(header):
        return header
    return "client"


def build_gateway_app(
    gw: Gateway,
    *,
    setup: list[Callable[[web.Application], None]] | None = None,
    scopes: Mapping[tuple[str, str], str] | None = None,
) -> web.Application:
    from voxmesh.api.openapi import setup_openapi_routes
    from voxmesh.gateway.cors import CorsPolicy, cors_middleware
    from voxmesh.tenancy.http import usage_handler

    cors = CorsPolicy(gw.settings.hardening.cors_origins)
    app = web.Application(middlewares=[cors_middleware(cors), error_middleware], client_max_size=MAX_BODY)
    install_guard(app, gw.guard)
    app[GATEWAY_KEY] = gw
    r = app.router
    r.add_get("/healthz", gw.healthz)
    r.add_get("/readyz", gw.readyz)
    r.add_get("/metrics", gw.metrics)
    r.add_get("/v1/models", gw.models)
    r.add_get("/v1/audio/voices", gw.voices)
    r.add_post("/v1/audio/speech", gw.speech)
    for path in ("/translate", "/detect", "/v1/translations", "/v1/chat/completions"):
        r.add_post(path, gw.translate_proxy)
    r.add_get("/languages", gw.translate_proxy)
    r.add_get("/admin/topology", gw.topology)
    r.add_put("/admin/splits/{model}", gw.put_split)
    r.add_post("/admin/canaries", gw.start_canary)
    r.add_get("/admin/canaries/{model}", gw.get_canary)
    r.add_get("/v1/usage", usage_handler(gw.admission.meter))
    # security per operation from the same table the guard enforces
    setup_openapi_routes(app, ROUTES if scopes is None else scopes)
    for hook in setup or []:
        hook(app)
    from voxmesh.api.request_id import install

    install(app)  # X-Request-Id: decided here, sent upstream, echoed, in every log line
    return app
