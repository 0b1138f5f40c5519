"""Deployments reached as Services (``gateway.mesh: linkerd``): what the gateway reads from them.

Under Linkerd every model deployment is a Kubernetes Service in front of ``voxmesh worker``
pods; the gateway runs no workers, so the voices of ``GET /v1/audio/voices`` come from the
worker's own ``/info`` through the Service (the proxy picks a ready pod). The gateway may well
start before any pod is ready, and a rollout may change the voices, so :func:`keep_voices_fresh`
reads them again in the background: every ``retry_s`` while a Service has not answered yet,
every ``interval_s`` after that. A Service that cannot answer keeps the voices it had.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

import aiohttp

from voxmesh.deployments import Deployment

__all__ = ["fetch_voices", "keep_voices_fresh", "refresh_voices"]

log = logging.getLogger(__name__)

Voices = dict[str, list[dict[str, Any]]]


async def fetch_voices(session: aiohttp.ClientSession, url: str, timeout_s: float = 5.0) -> list[dict[str, Any]] | None:
    """The ``voices`` of ``{url}/info``, or None when the Service cannot say."""
    try:
        async with session.get(f"{url.rstrip('/')}/info", timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
            if resp.status != 200:
                return None
            data = await resp.json()
    except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
        log.info("no voices from %s yet: %r", url, exc)
        return None
    voices = data.get("voices") if isinstance(data, dict) else None
    return voices if isinstance(voices, list) else None


def _tts_services(deployments: Iterable[Deployment]) -> list[tuple[str, str]]:
    return [(d.name, d.external.urls[0]) for d in deployments if d.external is not None and d.external.kind == "tts"]


async def refresh_voices(session: aiohttp.ClientSession, deployments: Iterable[Deployment], voices: Voices) -> bool:
    """One pass over the TTS Services; True when every one has answered at least once."""
    complete = True
    for name, url in _tts_services(deployments):
        got = await fetch_voices(session, url)
        if got is not None:
            voices[name] = got
        elif name not in voices:
            complete = False
    return complete


async def keep_voices_fresh(
    deployments: list[Deployment], voices: Voices, *, interval_s: float = 30.0, retry_s: float = 2.0
) -> None:
    """Background loop (cancel it to stop); survives any error of one pass."""
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                complete = await refresh_voices(session, deployments, voices)
            except Exception:  # a bad answer must not end the loop
                log.exception("refreshing voices from Services failed")
                complete = False
            await asyncio.sleep(interval_s if complete else retry_s)
