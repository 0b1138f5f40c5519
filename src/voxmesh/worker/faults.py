"""Fault injection on a worker, for resilience tests and the chaos soak.

Two knobs, read on every speech request before admission (so a fault holds no core):
``error_rate`` (the fraction of requests answered 500) and ``delay_ms`` (added before the
first byte; a large value is a hung worker). They start from the worker settings
(``VOXMESH_WORKER__FAULT_ERROR_RATE``, ``..._FAULT_DELAY_MS``) and can be changed at run time:

    GET /admin/faults                      {"error_rate": 0.0, "delay_ms": 0.0}
    PUT /admin/faults  {"error_rate": 1}   the new values (fields left out keep theirs)

The route answers only loopback callers (403 otherwise); a worker of ``voxmesh up`` is
mTLS-only as well, so only a holder of the gateway identity reaches it at all.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from voxmesh.api.schemas import parse_body
from voxmesh.errors import EngineError, Forbidden

__all__ = ["FaultUpdate", "Faults"]


class FaultUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    error_rate: float | None = Field(None, ge=0.0, le=1.0)
    delay_ms: float | None = Field(None, ge=0.0, le=600_000.0)


class Faults:
    def __init__(self, error_rate: float = 0.0, delay_ms: float = 0.0, rng: random.Random | None = None) -> None:
        self.error_rate = error_rate
        self.delay_ms = delay_ms
        self.rng = rng or random.Random()
        self.injected = 0  # requests answered 500 by injection

    def view(self) -> dict[str, float]:
        return {"error_rate": self.error_rate, "delay_ms": self.delay_ms}

    async def inject(self) -> None:
        """Sleep ``delay_ms``, then fail with the probability ``error_rate``."""
        if self.delay_ms > 0:
            await asyncio.sleep(self.delay_ms / 1000.0)
        if self.error_rate > 0 and self.rng.random() < self.error_rate:
            self.injected += 1
            raise EngineError("injected fault (worker fault error_rate)")

    async def handle(self, request: web.Request) -> web.Response:
        remote = request.remote or ""
        try:
            loopback = ipaddress.ip_address(remote).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise Forbidden("fault injection is only reachable from loopback")
        if request.method == "PUT":
            upd: FaultUpdate = parse_body(await request.read(), FaultUpdate)
            if upd.error_rate is not None:
                self.error_rate = upd.error_rate
            if upd.delay_ms is not None:
                self.delay_ms = upd.delay_ms
        return web.json_response(self.view())

    def setup_routes(self, app: web.Application) -> None:
        app.router.add_get("/admin/faults", self.handle)
        app.router.add_put("/admin/faults", self.handle)
