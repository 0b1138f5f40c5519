"""Deployments reached as Services (``gateway.mesh: linkerd``): what the gateway reads from them.

Under Linkerd every model deployment is a Kubernetes Service in front of ``voxmesh worker``
pods; the gateway runs no workers, so the voices of ``GET /v1/audio/voices`` come from the
worker's own ``/info`` through the Service (the proxy picks a ready pod). A Service that does
not answer yet leaves the voices empty; the next refresh fills them.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp

__all__ = ["fetch_voices"]

log = logging.getLogger(__name__)


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
