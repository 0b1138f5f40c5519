"""The controller with real worker processes: burst scale-up through the warm pool, scale-down
that drops nothing, and a kill -9'd worker that is restarted and rejoins."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.support.stacks import closed_loop, start_stack
from tests.support.waits import until

from voxmesh.autoscale.lifecycle import ReplicaState
from voxmesh.stack import Stack

pytestmark = pytest.mark.slow

CONFIG = {
    "deployments": [
        {
            "name": "tone",
            "engine": "tone",
            "options": {"delay_s": 0.25, "ms_per_char": 5},
            "replicas": {"min": 1, "max": 3, "warm": 1},
            "threads": 1,
            "scaling": {"in_flight_per_replica": 1, "scale_down_window_s": 2, "sync_period_s": 0.5},
        }
    ],
    "aliases": {"tts-1": "tone"},
}


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with start_stack(tmp_path, CONFIG) as st:
        yield st


async def load(url: str, concurrency: int, seconds: float, statuses: list[int]) -> None:
    def body(i: int, n: int) -> dict[str, str]:
        return {"model": "tts-1", "input": f"Client {i} request {n}.", "voice": "low", "response_format": "pcm"}

    await closed_loop(url, body, clients=concurrency, seconds=seconds, statuses=statuses)


async def test_burst_scales_up_then_down_without_dropping(stack: Stack) -> None:
    sup = stack.supervisor
    await until(lambda: len(sup.warm("tone")) == 1, 30, "warm pool filled", every=0.05)
    assert len(sup.serving("tone")) == 1
    statuses: list[int] = []
    burst = asyncio.ensure_future(load(stack.url, concurrency=6, seconds=6.0, statuses=statuses))
    await until(lambda: len(sup.serving("tone")) >= 2, 10, "scale-up", every=0.05)
    # the first step up promotes the warm replica: no model load in the way
    promoted = [e for e in sup.events if e["event"] == "promote"]
    assert len(promoted) >= 2
    await burst
    peak = max(e.get("desired", 0) for e in sup.events if e["event"] == "scale")
    assert peak >= 2
    # light traffic continues while the autoscaler scales back down
    statuses_down: list[int] = []
    trickle = asyncio.ensure_future(load(stack.url, concurrency=1, seconds=8.0, statuses=statuses_down))
    await until(lambda: len(sup.serving("tone")) == 1, 20, "scale-down", every=0.05)
    await trickle
    assert statuses and set(statuses) == {200}, {s: statuses.count(s) for s in set(statuses)}
    assert statuses_down and set(statuses_down) == {200}
    # the warm pool is back to its size
    await until(lambda: len(sup.warm("tone")) >= 1, 20, "warm pool refill", every=0.05)
    assert any(e["event"] in ("drain", "to-warm") for e in sup.events)


async def test_killed_worker_is_restarted_and_rejoins(stack: Stack) -> None:
    sup = stack.supervisor
    sup.scale("tone", 2, reason="test")
    await until(lambda: len(sup.serving("tone")) == 2, 30, "two serving", every=0.05)
    victim = sup.serving("tone")[0]
    statuses: list[int] = []
    traffic = asyncio.ensure_future(load(stack.url, concurrency=2, seconds=6.0, statuses=statuses))
    await asyncio.sleep(0.5)
    assert victim.proc is not None
    os.kill(victim.proc.pid, signal.SIGKILL)
    await until(lambda: victim.state is ReplicaState.CRASHED or victim.restarts > 0, 5, "crash noticed", every=0.05)
    await until(lambda: victim.state is ReplicaState.SERVING or victim.state is ReplicaState.WARM, 30, "restart", every=0.05)
    await traffic
    assert victim.restarts == 1
    assert any(e["event"] == "crash" and e["replica"] == victim.id for e in sup.events)
    ok = statuses.count(200)
    assert ok / len(statuses) >= 0.99, {s: statuses.count(s) for s in set(statuses)}
