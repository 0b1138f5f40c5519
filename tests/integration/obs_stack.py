"""A cheap stack for the observability tests: tone deployments (and Piper where stages matter)
in one process, and a load generator. Shared by the Prometheus/Grafana and browser tests."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from voxmesh.deployments import DeploymentsConfig
from voxmesh.settings import load_settings
from voxmesh.stack import Stack

__all__ = ["load", "start_stack", "tone_config"]


def tone_config(*, piper_fault: str | None = None, fault_ms: float = 0.0, mt: bool = False) -> DeploymentsConfig:
    def tone(name: str, rmin: int, rmax: int, warm: int) -> dict[str, Any]:
        return {"name": name, "engine": "tone", "options": {"ms_per_char": 2, "delay_s": 0.02}, "threads": 1,
                "replicas": {"min": rmin, "max": rmax, "warm": warm},
                "scaling": {"in_flight_per_replica": 1, "scale_down_window_s": 5}}
    deps = [tone("voice-v1", 1, 3, 1), tone("voice-v2", 1, 1, 0)]
    if piper_fault is not None:
        deps.append({"name": "tts-en", "engine": "piper", "threads": 1, "replicas": {"min": 1, "max": 1, "warm": 0},
                     "env": {"VOXMESH_WORKER__FAULT_STAGE": piper_fault,
                             "VOXMESH_WORKER__FAULT_STAGE_DELAY_MS": str(fault_ms)}})
    if mt:  # the bundled Gemma-3-270M through llama.cpp (demo grade, loads in seconds)
        deps.append({"name": "mt", "engine": "llamacpp", "threads": 1, "replicas": {"min": 1, "max": 1, "warm": 0}})
    return DeploymentsConfig.model_validate({"deployments": deps, "aliases": {"tts-1": "voice-v1"}})


@contextlib.asynccontextmanager
async def start_stack(tmp: Path, config: DeploymentsConfig) -> AsyncIterator[Stack]:
    settings = load_settings(None, data_dir=tmp / "data", server={"port": 0})
    st = Stack(settings, config)
    try:
        await st.start()
        yield st
    finally:
        await st.stop()


async def load(url: str, seconds: float, *, clients: int = 3, models: tuple[str, ...] = ("voice-v1", "voice-v2"),
               text: str = "Load for the dashboard, one sentence.", stop: asyncio.Event | None = None) -> int:
    """Closed-loop clients over ``models`` for ``seconds`` (or until ``stop``); returns answers."""
    done = 0
    deadline = time.monotonic() + seconds

    async def client(i: int, http: aiohttp.ClientSession) -> None:
        nonlocal done
        n = i
        while time.monotonic() < deadline and not (stop is not None and stop.is_set()):
            body = {"model": models[n % len(models)], "input": text, "voice": "low", "response_format": "wav"}
            n += 1
            async with http.post(url + "/v1/audio/speech", json=body) as r:
                await r.read()
                done += r.status == 200

    async with aiohttp.ClientSession() as http:
        await asyncio.gather(*(client(i, http) for i in range(clients)))
    return done
