"""Scale to zero and back with real processes: an idle deployment goes to zero replicas after
its cooldown; the next request is held (not refused) while the first replica starts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from tests.support.stacks import start_stack

from voxmesh.stack import Stack

pytestmark = pytest.mark.slow

CONFIG = {"deployments": [{
    "name": "tone", "engine": "tone", "threads": 1,
    "replicas": {"min": 0, "max": 2, "warm": 0},
    "scaling": {"in_flight_per_replica": 1, "sync_period_s": 0.3, "scale_down_window_s": 1,
                "zero_after_s": 1.5, "hold_requests": 3, "hold_timeout_s": 60},
}]}


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with start_stack(tmp_path, CONFIG) as st:
        yield st


async def speak(session: aiohttp.ClientSession, url: str) -> tuple[int, float]:
    t0 = time.monotonic()
    body = {"model": "tone", "input": "Wake up.", "voice": "low", "response_format": "pcm"}
    async with session.post(url + "/v1/audio/speech", json=body) as resp:
        await resp.read()
        return resp.status, time.monotonic() - t0


async def test_held_requests_start_the_first_replica_then_idle_goes_to_zero(stack: Stack) -> None:
    sup = stack.supervisor
    assert sup.serving("tone") == [] and sup.replicas["tone"] == []
    async with aiohttp.ClientSession() as session:
        # three held requests succeed once the first replica is up; a fourth is refused clearly
        results = await asyncio.gather(*(speak(session, stack.url) for _ in range(3)))
        assert [s for s, _ in results] == [200, 200, 200]
        assert any(e["event"] == "scale" and "activation" in e["reason"] for e in sup.events)
        # idle: back to zero after the cooldown
        t0 = time.monotonic()
        while sup.serving("tone") or any(r.proc and r.proc.returncode is None for r in sup.replicas["tone"]):
            assert time.monotonic() - t0 < 30, sup.events[-5:]
            await asyncio.sleep(0.1)
        # and from zero again
        status, _ = await speak(session, stack.url)
        assert status == 200


async def test_over_the_hold_limit_is_a_503_with_retry_after(stack: Stack) -> None:
    async with aiohttp.ClientSession() as session:
        body = {"model": "tone", "input": "Wake up.", "voice": "low", "response_format": "pcm"}

        async def one() -> tuple[int, str | None]:
            async with session.post(stack.url + "/v1/audio/speech", json=body) as resp:
                await resp.read()
                return resp.status, resp.headers.get("Retry-After")

        results = await asyncio.gather(*(one() for _ in range(6)))
    codes = sorted(s for s, _ in results)
    assert codes.count(200) >= 3
    refused = [r for r in results if r[0] == 503]
    assert refused and all(ra is not None for _, ra in refused)
