"""Tenancy: rate limits, quotas and usage metering per tenant (see ``admission.py`` for the call)."""

from __future__ import annotations

from voxmesh.tenancy.admission import Admission, build_admission
from voxmesh.tenancy.bucket import UNLIMITED, BucketResult, BucketSpec, BucketState, Decision
from voxmesh.tenancy.limiter import Limiter, MemoryLimiter
from voxmesh.tenancy.limits import DefaultLimits, RouteKind, TenantLimits
from voxmesh.tenancy.usage import UsageKind, UsageMeter, audio_seconds

__all__ = [
    "UNLIMITED",
    "Admission",
    "BucketResult",
    "BucketSpec",
    "BucketState",
    "Decision",
    "DefaultLimits",
    "Limiter",
    "MemoryLimiter",
    "RouteKind",
    "TenantLimits",
    "UsageKind",
    "UsageMeter",
    "audio_seconds",
    "build_admission",
]
