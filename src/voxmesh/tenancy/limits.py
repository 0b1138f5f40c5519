"""Per-tenant limits and what each route charges against them (pure).

A tenant row (the ``tenants`` table of the auth branch) carries ``requests_per_minute``,
``chars_per_day``, ``audio_seconds_per_month``, ``concurrent_jobs`` and ``max_job_chars``;
None means unlimited. :class:`DefaultLimits` fills what a tenant row leaves unset from
``VOXMESH_LIMITS__*``.

Charges per route (the ``ROUTE_KINDS`` table; anything else charges one request only):

=============  ===================================================================
speech         1 request, ``cost`` characters, and a check that the audio-seconds
               bucket is not in debt (audio is charged after synthesis: ``debit``)
translate      1 request and ``cost`` characters (translated characters)
job            1 request, ``cost`` characters, ``cost <= max_job_chars`` and
               ``active_jobs < concurrent_jobs``
other          1 request
=============  ===================================================================
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from enum import Enum
from typing import Any

from voxmesh.settings import LimitsSettings
from voxmesh.tenancy.bucket import BucketSpec

__all__ = [
    "DAY_S",
    "MINUTE_S",
    "MONTH_S",
    "ROUTE_KINDS",
    "Charge",
    "DefaultLimits",
    "RouteKind",
    "TenantLimits",
    "charges",
    "route_kind",
]

MINUTE_S = 60.0
DAY_S = 86_400.0
MONTH_S = 30 * DAY_S


class RouteKind(Enum):
    SPEECH = "speech"
    TRANSLATE = "translate"
    JOB = "job"
    OTHER = "other"


ROUTE_KINDS: Mapping[str, RouteKind] = {
    "POST /v1/audio/speech": RouteKind.SPEECH,
    "POST /translate": RouteKind.TRANSLATE,
    "POST /v1/translations": RouteKind.TRANSLATE,
    "POST /v1/chat/completions": RouteKind.TRANSLATE,
    "POST /v1/jobs": RouteKind.JOB,
}


def route_kind(route: str) -> RouteKind:
    """``route`` is ``"METHOD /path"`` as in the route table."""
    return ROUTE_KINDS.get(route, RouteKind.OTHER)


@dataclass(frozen=True)
class TenantLimits:
    requests_per_minute: int | None = None
    chars_per_day: int | None = None
    audio_seconds_per_month: int | None = None
    concurrent_jobs: int | None = None
    max_job_chars: int | None = None

    @classmethod
    def from_row(cls, row: Any) -> TenantLimits:
        """From any object or mapping with the limit columns (missing ones: None)."""
        get: Callable[[str], Any] = row.get if isinstance(row, Mapping) else (lambda n: getattr(row, n, None))
        return cls(**{f.name: get(f.name) for f in fields(cls)})

    def over(self, defaults: TenantLimits) -> TenantLimits:
        """These limits, with None filled from ``defaults``."""
        return replace(self, **{f.name: getattr(defaults, f.name) for f in fields(self) if getattr(self, f.name) is None})


class DefaultLimits:
    """Limits per tenant: a tenant's own (``lookup``, e.g. the tenants table) over the settings."""

    def __init__(self, settings: LimitsSettings, lookup: Callable[[str], TenantLimits | None] | None = None) -> None:
        self.defaults = TenantLimits(
            requests_per_minute=settings.requests_per_minute, chars_per_day=settings.chars_per_day,
            audio_seconds_per_month=settings.audio_seconds_per_month,
            concurrent_jobs=settings.concurrent_jobs, max_job_chars=settings.max_job_chars,
        )  # fmt: skip
        self.lookup = lookup

    def __call__(self, tenant: str) -> TenantLimits:
        own = self.lookup(tenant) if self.lookup is not None else None
        return self.defaults if own is None else own.over(self.defaults)


@dataclass(frozen=True)
class Charge:
    """What one request costs: bucket specs with their costs, and static checks."""

    buckets: tuple[tuple[BucketSpec, float], ...]
    too_large: str | None = None  # a message when the request alone is over a size limit
    too_many_jobs: bool = False


def charges(
    limits: TenantLimits, kind: RouteKind, cost: int, active_jobs: int | None = None, *, burst_s: float = MINUTE_S
) -> Charge:
    """What a request costs; the requests bucket holds ``burst_s`` seconds' worth (at least 1)."""
    out: list[tuple[BucketSpec, float]] = []
    if limits.requests_per_minute is not None:
        rpm = limits.requests_per_minute
        burst = max(1.0, rpm * min(burst_s, MINUTE_S) / MINUTE_S)
        out.append((BucketSpec("requests", rpm, MINUTE_S, burst), 1.0))
    if kind is not RouteKind.OTHER and limits.chars_per_day is not None:
        out.append((BucketSpec("tokens", limits.chars_per_day, DAY_S), float(cost)))
    if kind in (RouteKind.SPEECH, RouteKind.JOB) and limits.audio_seconds_per_month is not None:
        out.append((BucketSpec("audio_seconds", limits.audio_seconds_per_month, MONTH_S), 0.0))
    too_large = None
    too_many = False
    if kind is RouteKind.JOB:
        if limits.max_job_chars is not None and cost > limits.max_job_chars:
            too_large = f"the job has {cost} characters; this tenant's limit is {limits.max_job_chars} per job"
        if limits.concurrent_jobs is not None and active_jobs is not None and active_jobs >= limits.concurrent_jobs:
            too_many = True
    return Charge(tuple(out), too_large, too_many)
