"""admit(): limits per tenant and route, 429/413 decisions, usage, and the /v1/usage rules."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from voxmesh.errors import Forbidden
from voxmesh.settings import LimitsSettings
from voxmesh.tenancy import (
    Admission,
    DefaultLimits,
    MemoryLimiter,
    TenantLimits,
    UsageKind,
    UsageMeter,
    build_admission,
)
from voxmesh.tenancy.http import read_usage
from voxmesh.tenancy.limits import RouteKind, charges, route_kind
from voxmesh.tenancy.usage import audio_seconds


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Row:  # what a tenants-table row looks like to DefaultLimits
    requests_per_minute: int | None = None
    chars_per_day: int | None = None


def _admission(clock: FakeClock, **defaults: int) -> Admission:
    rows = {"small": TenantLimits.from_row(Row(requests_per_minute=2)), "big": TenantLimits.from_row({})}
    settings = LimitsSettings(**{"burst_s": 60, **defaults})  # type: ignore[arg-type]
    return Admission(MemoryLimiter(clock), DefaultLimits(settings, rows.get), burst_s=settings.burst_s)


async def test_tenant_row_overrides_defaults_and_none_is_unlimited() -> None:
    clock = FakeClock()
    adm = _admission(clock, requests_per_minute=5, chars_per_day=1000)
    small = [(await adm.admit("small", "GET /v1/models")).allowed for _ in range(3)]
    assert small == [True, True, False]
    big = [(await adm.admit("big", "GET /v1/models")).allowed for _ in range(6)]
    assert big == [True] * 5 + [False]  # the row sets nothing: the defaults apply
    free = Admission(MemoryLimiter(clock), DefaultLimits(LimitsSettings()))
    d = await free.admit("x", "POST /v1/audio/speech", 10**9)
    assert d.allowed and d.headers() == {}


async def test_requests_burst_is_a_few_seconds_worth() -> None:
    clock = FakeClock()
    adm = build_admission(LimitsSettings(requests_per_minute=600, burst_s=2))
    adm.limiter.clock = clock  # type: ignore[attr-defined]
    got = [(await adm.admit("t", "GET /v1/models")).allowed for _ in range(25)]
    assert got == [True] * 20 + [False] * 5  # 2 s of 10/s
    clock.now += 0.5
    assert [(await adm.admit("t", "GET /v1/models")).allowed for _ in range(6)] == [True] * 5 + [False]


async def test_speech_charges_characters_per_day() -> None:
    clock = FakeClock()
    adm = _admission(clock, chars_per_day=100)
    d = await adm.admit("t", "POST /v1/audio/speech", 60)
    assert d.allowed and d.headers()["x-ratelimit-remaining-tokens"] == "40"
    d = await adm.admit("t", "POST /v1/audio/speech", 60)
    assert not d.allowed and d.error().status == 429
    assert d.retry_after == pytest.approx(20 * 864, rel=1e-3)  # 20 chars at 100/day
    assert (await adm.admit("t", "GET /v1/models", 10**6)).allowed  # not a text route
    assert (await adm.meter.store.get("t"))["t"]["throttled"] == 1


async def test_audio_seconds_are_charged_after_synthesis() -> None:
    clock = FakeClock()
    adm = _admission(clock, audio_seconds_per_month=100)
    assert (await adm.admit("t", "POST /v1/audio/speech", 10)).allowed
    await adm.charge_audio("t", 150)
    d = await adm.admit("t", "POST /v1/audio/speech", 10)
    assert not d.allowed and d.binding is not None and d.binding.name == "audio_seconds"
    assert (await adm.admit("t", "POST /translate", 10)).allowed  # translation does not need audio


async def test_jobs_size_and_concurrency() -> None:
    adm = _admission(FakeClock(), max_job_chars=1000, concurrent_jobs=2)
    d = await adm.admit("t", "POST /v1/jobs", 1001, active_jobs=0)
    assert not d.allowed and d.error().status == 413 and "limit is 1000 per job" in d.error().message
    d = await adm.admit("t", "POST /v1/jobs", 10, active_jobs=2)
    assert not d.allowed and d.error().status == 429 and "unfinished jobs" in d.error().message
    assert (await adm.admit("t", "POST /v1/jobs", 10, active_jobs=1)).allowed


def test_route_kinds() -> None:
    assert route_kind("POST /v1/audio/speech") is RouteKind.SPEECH
    assert route_kind("POST /translate") is RouteKind.TRANSLATE
    assert route_kind("GET /v1/jobs") is RouteKind.OTHER
    assert charges(TenantLimits(), RouteKind.SPEECH, 5).buckets == ()


async def test_usage_meter_bounds_labels_and_reads_per_tenant() -> None:
    meter = UsageMeter(max_tenants=2)
    await meter.speech("a", 10, 1.5)
    await meter.translation("b", 7)
    await meter.job("c", 3)  # third tenant: its metric series is "other"
    text = meter.metrics_text()
    assert 'voxmesh_tenant_usage_total{tenant="a",kind="chars_synthesized"} 10' in text
    assert 'voxmesh_tenant_usage_total{tenant="other",kind="jobs"} 1' in text
    assert 'tenant="c"' not in text and "voxmesh_tenant_usage_overflow_total 1" in text
    totals = await meter.store.get(None)
    assert totals["c"][UsageKind.JOBS.value] == 1  # /v1/usage still has every tenant


@dataclass(frozen=True)
class P:
    tenant: str
    scopes: frozenset[str]


async def test_read_usage_own_other_and_admin() -> None:
    meter = UsageMeter()
    await meter.speech("a", 10, 2.0)
    await meter.speech("b", 5, None)
    own = await read_usage(meter, P("a", frozenset()), None)
    assert [r["tenant"] for r in own["data"]] == ["a"] and own["data"][0]["audio_seconds"] == 2.0
    with pytest.raises(Forbidden):
        await read_usage(meter, P("a", frozenset({"tts:speak"})), "b")
    every = await read_usage(meter, P("root", frozenset({"admin"})), "*")
    assert [r["tenant"] for r in every["data"]] == ["a", "b"]


def test_audio_seconds_from_worker_headers_or_bytes() -> None:
    assert audio_seconds({"X-Audio-Seconds": "2.500"}, 10, "mp3") == 2.5
    assert audio_seconds({"X-Sample-Rate": "22050"}, 44 + 2 * 22050, "wav") == 1.0
    assert audio_seconds({"X-Sample-Rate": "24000"}, 48000, "pcm") == 1.0
    assert audio_seconds({"X-Sample-Rate": "24000"}, 48000, "mp3") is None
