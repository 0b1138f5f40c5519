"""Usage metering per tenant: characters synthesized, audio seconds, translated characters, jobs.

Two views of the same records:

* ``/metrics``: per-process Prometheus counters ``voxmesh_tenant_usage_total{tenant, kind}``
  (sum over gateways in Prometheus). Label cardinality is bounded: the first
  ``max_tenants`` tenants seen get their own series, later ones are counted as
  ``tenant="other"`` (``voxmesh_tenant_usage_overflow_total`` says how often).
* ``GET /v1/usage``: totals from a :class:`UsageStore`: in memory for one gateway, or in
  Redis (``HINCRBYFLOAT`` on ``<prefix>usage:<tenant>``) so every gateway adds to one total.

What the gateway can see: request body characters, and audio seconds from the worker's
answer (:func:`audio_seconds`).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping
from enum import Enum
from typing import Any, Protocol

__all__ = ["MemoryUsageStore", "RedisUsageStore", "UsageKind", "UsageMeter", "UsageStore", "audio_seconds"]


class UsageKind(Enum):
    CHARS_SYNTHESIZED = "chars_synthesized"
    AUDIO_SECONDS = "audio_seconds"
    CHARS_TRANSLATED = "chars_translated"
    JOBS = "jobs"
    REQUESTS = "requests"
    THROTTLED = "throttled"


class UsageStore(Protocol):
    async def add(self, tenant: str, amounts: Mapping[UsageKind, float]) -> None: ...

    async def get(self, tenant: str | None) -> dict[str, dict[str, float]]:
        """``{tenant: {kind: total}}`` for one tenant, or for all when ``tenant`` is None."""
        ...


def _blank() -> dict[str, float]:
    return {k.value: 0.0 for k in UsageKind}


class MemoryUsageStore:
    def __init__(self) -> None:
        self._totals: dict[str, dict[str, float]] = {}

    async def add(self, tenant: str, amounts: Mapping[UsageKind, float]) -> None:
        row = self._totals.setdefault(tenant, _blank())
        for kind, amount in amounts.items():
            row[kind.value] += amount

    async def get(self, tenant: str | None) -> dict[str, dict[str, float]]:
        if tenant is not None:
            return {tenant: dict(self._totals.get(tenant, _blank()))}
        return {t: dict(v) for t, v in sorted(self._totals.items())}


class RedisUsageStore:
    """Totals in Redis hashes; ``client`` is a ``redis.asyncio.Redis``."""

    def __init__(self, client: Any, key_prefix: str = "voxmesh:rl:") -> None:
        self.client = client
        self.prefix = f"{key_prefix}usage:"

    async def add(self, tenant: str, amounts: Mapping[UsageKind, float]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for kind, amount in amounts.items():
            pipe.hincrbyfloat(self.prefix + tenant, kind.value, amount)
        await pipe.execute()

    async def get(self, tenant: str | None) -> dict[str, dict[str, float]]:
        if tenant is not None:
            tenants = [tenant]
        else:
            tenants = sorted([k.decode()[len(self.prefix):] if isinstance(k, bytes) else k[len(self.prefix):]
                              async for k in self.client.scan_iter(match=self.prefix + "*")])  # fmt: skip
        out: dict[str, dict[str, float]] = {}
        for t in tenants:
            row = _blank()
            for k, v in (await self.client.hgetall(self.prefix + t)).items():
                name = k.decode() if isinstance(k, bytes) else k
                if name in row:
                    row[name] = float(v)
            out[t] = row
        return out


_LABEL_SAFE = re.compile(r'[\\"\n]')


class UsageMeter:
    """Records usage into a store and into bounded per-process Prometheus counters."""

    def __init__(self, store: UsageStore | None = None, max_tenants: int = 100) -> None:
        self.store: UsageStore = store if store is not None else MemoryUsageStore()
        self.max_tenants = max_tenants
        self._counters: dict[str, dict[UsageKind, float]] = defaultdict(lambda: defaultdict(float))
        self.overflow = 0

    def _label(self, tenant: str) -> str:
        if tenant in self._counters or len(self._counters) < self.max_tenants:
            return tenant
        self.overflow += 1
        return "other"

    async def record(self, tenant: str, amounts: Mapping[UsageKind, float]) -> None:
        series = self._counters[self._label(tenant)]
        for kind, amount in amounts.items():
            series[kind] += amount
        await self.store.add(tenant, amounts)

    async def speech(self, tenant: str, chars: int, seconds: float | None) -> None:
        amounts = {UsageKind.REQUESTS: 1.0, UsageKind.CHARS_SYNTHESIZED: float(chars)}
        if seconds is not None:
            amounts[UsageKind.AUDIO_SECONDS] = seconds
        await self.record(tenant, amounts)

    async def translation(self, tenant: str, chars: int) -> None:
        await self.record(tenant, {UsageKind.REQUESTS: 1.0, UsageKind.CHARS_TRANSLATED: float(chars)})

    async def job(self, tenant: str, chars: int) -> None:
        await self.record(tenant, {UsageKind.REQUESTS: 1.0, UsageKind.JOBS: 1.0,
                                   UsageKind.CHARS_SYNTHESIZED: float(chars)})  # fmt: skip

    async def throttled(self, tenant: str) -> None:
        await self.record(tenant, {UsageKind.THROTTLED: 1.0})

    def metrics_text(self) -> str:
        lines = [
            "# HELP voxmesh_tenant_usage_total usage per tenant (bounded: late tenants count as 'other')",
            "# TYPE voxmesh_tenant_usage_total counter",
        ]
        for tenant in sorted(self._counters):
            label = _LABEL_SAFE.sub("_", tenant)
            for kind, value in sorted(self._counters[tenant].items(), key=lambda kv: kv[0].value):
                lines.append(f'voxmesh_tenant_usage_total{{tenant="{label}",kind="{kind.value}"}} {value:g}')
        lines += [
            "# HELP voxmesh_tenant_usage_overflow_total records counted under tenant=\"other\"",
            "# TYPE voxmesh_tenant_usage_overflow_total counter",
            f"voxmesh_tenant_usage_overflow_total {self.overflow}",
        ]
        return "\n".join(lines) + "\n"


_PCM_BYTES = 2  # the worker's wav and pcm are 16-bit mono


def audio_seconds(headers: Mapping[str, str], body_bytes: int, response_format: str) -> float | None:
    """Seconds of audio in a worker's answer.

    ``X-Audio-Seconds`` when the worker sent it (non-streamed answers); else, for ``wav``
    and ``pcm``, from the byte count and ``X-Sample-Rate`` (exact but for the 44-byte wav
    header); else None (a streamed compressed answer: the length is not known up front).
    """
    lower = {k.lower(): v for k, v in headers.items()}
    given = lower.get("x-audio-seconds")
    if given is not None:
        try:
            return max(0.0, float(given))
        except ValueError:
            pass
    if response_format in ("wav", "pcm"):
        try:
            rate = int(lower.get("x-sample-rate", ""))
        except ValueError:
            return None
        data = body_bytes - (44 if response_format == "wav" else 0)
        return max(0, data) / (_PCM_BYTES * rate) if rate > 0 else None
    return None
