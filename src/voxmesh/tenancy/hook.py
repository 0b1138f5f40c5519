"""Rate limits, quotas and metering behind the auth guard: the one place both gateway
servers reach them.

The guard (:mod:`voxmesh.auth.guard`) authenticates a request, checks its scope, then runs
its admission hooks; :class:`LimitsHook` is the one that charges the tenant's buckets
(:func:`voxmesh.tenancy.gate.admit_request`), puts the ``x-ratelimit-*`` headers on the
answer and refuses with 429 (or 413 for a job over its size limit). After the answer the
guard's settle hooks run: :meth:`LimitsHook.settle` meters what was served.

Rules
    The job runners' chunk requests (credential ``internal``) are not charged: a job's
    characters are charged once, when the job is created.
    A tenant's own limits (the ``tenants`` table) are read through ``lookup`` and cached
    for ``ttl_s``; until the first read completes the settings' defaults apply. A failed read
    (the database restarting) keeps the last limits read and is retried within a second:
    speech and translation never fail because the metadata DB is down.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

from voxmesh.tenancy.admission import Admission
from voxmesh.tenancy.gate import admit_request, meter_answer, request_cost
from voxmesh.tenancy.limits import TenantLimits

if TYPE_CHECKING:
    from voxmesh.auth.guard import Call
    from voxmesh.auth.principal import Principal

__all__ = ["LimitsHook"]

log = logging.getLogger(__name__)

TenantLookup = Callable[[str], Awaitable[TenantLimits | None]]


class LimitsHook:
    def __init__(self, admission: Admission, lookup: TenantLookup | None = None, *, ttl_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.admission = admission
        self.lookup = lookup
        self.ttl_s = ttl_s
        self.clock = clock
        self._cache: dict[str, tuple[float, TenantLimits | None]] = {}
        if lookup is not None:
            admission.limits.lookup = self.cached  # type: ignore[attr-defined]

    def cached(self, tenant: str) -> TenantLimits | None:
        hit = self._cache.get(tenant)
        return None if hit is None else hit[1]

    async def _refresh(self, tenant: str) -> None:
        if self.lookup is None:
            return
        hit = self._cache.get(tenant)
        now = self.clock()
        if hit is None or hit[0] <= now:
            try:
                limits = await self.lookup(tenant)
            except Exception as exc:  # the tenants table is down (a DB restart): serve on what we know
                log.warning("tenant limits for %s unreadable (%s): keeping %s", tenant, type(exc).__name__,
                            "the last read" if hit is not None else "the defaults")
                self._cache[tenant] = (now + min(self.ttl_s, 1.0), None if hit is None else hit[1])
                return
            self._cache[tenant] = (now + self.ttl_s, limits)

    async def __call__(self, principal: Principal, call: Call) -> None:
        if principal.credential == "internal":
            return
        await self._refresh(principal.tenant)
        decision = await admit_request(self.admission, principal.tenant, call.method, call.path, call.body,
                                       call.content_type)
        call.response_headers.extend(decision.headers().items())
        if not decision.allowed:
            raise decision.error()

    async def settle(self, principal: Principal, call: Call, status: int, headers: Mapping[str, str],
                     body_bytes: int) -> None:
        if principal.credential == "internal":
            return
        cost = request_cost(call.method, call.path, call.body, call.content_type)
        await meter_answer(self.admission, principal.tenant, call.method, call.path, cost, status, headers,
                           body_bytes, _response_format(call))


def _response_format(call: Call) -> str:
    if call.content_type.startswith("application/json") and call.body:
        try:
            data = json.loads(call.body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return "mp3"
        if isinstance(data, dict) and isinstance(data.get("response_format"), str):
            return str(data["response_format"])
    return "mp3"  # OpenAI's default
