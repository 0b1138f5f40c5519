"""Admission: the one call the gateway makes after authentication.

    decision = await admission.admit(principal.tenant, "POST /v1/audio/speech", cost=len(text))
    if not decision.allowed:
        raise decision.error()          # 429 with Retry-After (413 for a job over max_job_chars)
    ... answer, adding decision.headers() (x-ratelimit-*) to the response ...
    await admission.charge_audio(principal.tenant, seconds)   # after synthesis, if known

Limits come from :class:`~voxmesh.tenancy.limits.DefaultLimits` (tenant row over settings),
buckets from a :class:`~voxmesh.tenancy.limiter.Limiter` (memory or Redis), and usage goes to a
:class:`~voxmesh.tenancy.usage.UsageMeter` (refusals are counted as ``throttled``).
"""

from __future__ import annotations

from collections.abc import Callable

from voxmesh.errors import PayloadTooLarge, QuotaExceeded
from voxmesh.settings import LimitsSettings
from voxmesh.tenancy.bucket import UNLIMITED, BucketSpec, Decision
from voxmesh.tenancy.limiter import Limiter, MemoryLimiter
from voxmesh.tenancy.limits import MONTH_S, DefaultLimits, TenantLimits, charges, route_kind
from voxmesh.tenancy.usage import MemoryUsageStore, RedisUsageStore, UsageMeter

__all__ = ["Admission", "build_admission"]


class Admission:
    def __init__(self, limiter: Limiter, limits: Callable[[str], TenantLimits], meter: UsageMeter | None = None,
                 *, burst_s: float = 60.0) -> None:
        self.burst_s = burst_s
        self.limiter = limiter
        self.limits = limits
        self.meter = meter if meter is not None else UsageMeter()

    async def admit(self, tenant: str, route: str, cost: int = 0, *, active_jobs: int | None = None) -> Decision:
        """Charge one request to ``tenant`` on ``route`` (``"METHOD /path"``) costing ``cost``
        characters; ``active_jobs`` (jobs not yet finished) for job creation."""
        charge = charges(self.limits(tenant), route_kind(route), cost, active_jobs, burst_s=self.burst_s)
        if charge.too_large is not None:
            return Decision(False, 0.0, (), PayloadTooLarge(charge.too_large, param="text"))
        if charge.too_many_jobs:
            msg = "too many unfinished jobs for this tenant: wait for one to finish or cancel one"
            await self.meter.throttled(tenant)
            return Decision(False, 1.0, (), QuotaExceeded(msg, retry_after=1.0))
        if not charge.buckets:
            return UNLIMITED
        decision = await self.limiter.take(tenant, charge.buckets)
        if not decision.allowed:
            await self.meter.throttled(tenant)
        return decision

    async def charge_audio(self, tenant: str, seconds: float) -> None:
        """Charge audio seconds after synthesis (the audio-seconds bucket may go into debt)."""
        cap = self.limits(tenant).audio_seconds_per_month
        if cap is not None and seconds > 0:
            await self.limiter.debit(tenant, BucketSpec("audio_seconds", cap, MONTH_S), seconds)

    async def close(self) -> None:
        await self.limiter.close()


def build_admission(
    settings: LimitsSettings, lookup: Callable[[str], TenantLimits | None] | None = None
) -> Admission:
    """From ``VOXMESH_LIMITS__*``: memory or Redis buckets and usage totals."""
    limits = DefaultLimits(settings, lookup)
    if settings.backend == "redis":
        from voxmesh.tenancy.redis_limiter import RedisLimiter

        limiter = RedisLimiter.from_url(settings.redis_url, settings.key_prefix)
        store = RedisUsageStore(limiter.client, settings.key_prefix)
        return Admission(limiter, limits, UsageMeter(store, settings.usage_max_tenants), burst_s=settings.burst_s)
    return Admission(MemoryLimiter(), limits, UsageMeter(MemoryUsageStore(), settings.usage_max_tenants),
                     burst_s=settings.burst_s)
