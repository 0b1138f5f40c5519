"""Automated canary analysis through the admin API of a real stack: a healthy canary is
promoted step by step; a failing one is rolled back to 0 % with every step in the log."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from tests.support.stacks import closed_loop, start_stack

from voxmesh.deployments import DeploymentsConfig
from voxmesh.stack import Stack

pytestmark = pytest.mark.slow


def config(canary_error_rate: float) -> DeploymentsConfig:
    def dep(name: str, env: dict[str, str]) -> dict[str, object]:
        return {"name": name, "engine": "tone", "options": {"ms_per_char": 2}, "threads": 1,
                "replicas": {"min": 1, "max": 1, "warm": 0}, "env": env}
    return DeploymentsConfig.model_validate({"deployments": [
        dep("voice-v1", {}),
        dep("voice-v2", {"VOXMESH_WORKER__FAULT_ERROR_RATE": str(canary_error_rate)}),
    ]})


@pytest.fixture(params=[0.0, 1.0], ids=["healthy", "failing"])
async def stack(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[Stack, float]]:
    async with start_stack(tmp_path, config(request.param)) as st:
        yield st, request.param


async def test_canary_promotes_or_rolls_back(stack: tuple[Stack, float]) -> None:
    st, error_rate = stack
    cfg = {"model": "voice", "primary": "voice-v1", "canary": "voice-v2", "interval_s": 0.5,
           "threshold": 2, "step_weight": 20, "max_weight": 60, "min_success_rate": 0.95,
           "max_p99_ms": 5000, "min_requests": 3}
    async with aiohttp.ClientSession() as session:
        async with session.post(st.url + "/admin/canaries", json=cfg) as resp:
            assert resp.status == 202, await resp.text()
        async with session.post(st.url + "/admin/canaries", json=cfg) as resp:
            assert resp.status == 409  # one analysis per model at a time
        deadline = time.monotonic() + 40
        phase = ""
        body = {"model": "voice", "input": "Canary traffic.", "voice": "low", "response_format": "pcm"}
        traffic = asyncio.ensure_future(closed_loop(
            st.url, lambda i, n: body, clients=4, seconds=40, stop=lambda: phase in ("promoted", "rolled_back"),
            session=session))
        while time.monotonic() < deadline:
            async with session.get(st.url + "/admin/canaries/voice") as resp:
                state = await resp.json()
            phase = state["phase"]
            if phase in ("promoted", "rolled_back"):
                break
            await asyncio.sleep(0.2)
        await traffic
    log = state["log"]
    assert log, state
    if error_rate == 0.0:
        assert phase == "promoted", state
        weights = [e["weight"] for e in log]
        assert max(weights) >= 60 and weights == sorted(weights[:-1]) + weights[-1:]
        assert st.catalog.splits["voice"] == {"voice-v1": 0.0, "voice-v2": 100.0}
    else:
        assert phase == "rolled_back", state
        assert state["weight"] == 0
        assert any("success rate" in e["reason"] for e in log)
        assert st.catalog.splits["voice"]["voice-v2"] == 0.0
