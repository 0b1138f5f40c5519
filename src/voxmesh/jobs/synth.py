"""How a runner turns one chunk of text into audio: the :class:`Synthesizer` protocol.

- :class:`HttpSynthesizer` POSTs to ``{base_url}/v1/audio/speech`` (normally the gateway, so
  jobs share its balancing, retries and breakers) asking for raw ``pcm`` (s16le mono); the
  rate comes from the ``X-Sample-Rate`` header (24000 if absent). Errors are translated to
  ``voxmesh.errors``: 429/5xx/timeouts/connection failures are retryable upstream errors,
  other 4xx are permanent (the request itself is wrong: bad voice, bad options).
- :class:`FakeSynthesizer` is deterministic: a sine whose pitch comes from a hash of the
  text, 60 ms of audio per character, so equal inputs give equal bytes in any process.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import ssl as ssl_mod
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import aiohttp
import numpy as np

from voxmesh.auth.guard import ON_BEHALF_HEADER
from voxmesh.errors import (
    InvalidRequest,
    NotFound,
    Overloaded,
    UnknownVoice,
    UpstreamError,
    UpstreamTimeout,
    VoxmeshError,
)
from voxmesh.observability.requestid import REQUEST_ID

__all__ = ["JOB_TENANT", "FakeSynthesizer", "HttpSynthesizer", "SynthResult", "Synthesizer"]

# the tenant of the job whose chunk this task synthesizes (set by the runner): sent with the
# runner's internal key so the gateway resolves the job's enrolled voice for that tenant
JOB_TENANT: ContextVar[str | None] = ContextVar("voxmesh_job_tenant", default=None)


@dataclass(frozen=True)
class SynthResult:
    pcm_s16le: bytes
    sample_rate: int

    @property
    def samples(self) -> int:
        return len(self.pcm_s16le) // 2

    @property
    def seconds(self) -> float:
        return self.samples / self.sample_rate


@runtime_checkable
class Synthesizer(Protocol):
    async def synthesize(self, text: str, *, model: str, voice: str, options: dict[str, Any]) -> SynthResult: ...


class HttpSynthesizer:
    def __init__(
        self,
        base_url: str,
        ssl: ssl_mod.SSLContext | None = None,
        headers: Mapping[str, str] | None = None,
        *,
        sample_rate: int = 24000,
        timeout_s: float = 300.0,
    ) -> None:
        self.url = base_url.rstrip("/") + "/v1/audio/speech"
        self.ssl = ssl
        self.headers = dict(headers or {})
        self.sample_rate = sample_rate
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def synthesize(self, text: str, *, model: str, voice: str, options: dict[str, Any]) -> SynthResult:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout, headers=self.headers)
        body = {**options, "model": model, "input": text, "voice": voice, "response_format": "pcm",
                "sample_rate": options.get("sample_rate", self.sample_rate)}
        body.pop("stream", None)
        try:
            rid, tenant = REQUEST_ID.get(), JOB_TENANT.get()  # rid: <submission id>-c<chunk>, client to worker
            extra = {"X-Request-Id": rid} if rid else {}
            if tenant:
                extra[ON_BEHALF_HEADER] = tenant
            async with self._session.post(self.url, json=body, ssl=self.ssl if self.ssl else True,
                                          headers=extra or None) as resp:
                data = await resp.read()
                if resp.status != 200:
                    raise _http_error(resp.status, data, resp.headers.get("Retry-After"))
                rate = int(resp.headers.get("X-Sample-Rate", "24000"))
        except VoxmeshError:
            raise
        except TimeoutError as exc:
            raise UpstreamTimeout(f"speech engine at {self.url} timed out") from exc
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            raise UpstreamError(f"speech engine at {self.url} failed: {exc}") from exc
        if len(data) % 2:
            raise UpstreamError(f"speech engine returned {len(data)} bytes: not whole s16le samples")
        return SynthResult(data, rate)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def _http_error(status: int, data: bytes, retry_after: str | None) -> VoxmeshError:
    try:
        message = str(json.loads(data)["error"]["message"])
    except (ValueError, KeyError, TypeError):
        message = data[:200].decode("utf-8", errors="replace")
    text = f"speech engine answered {status}: {message}"
    if status == 429 or status == 503:
        return Overloaded(text, retry_after=float(retry_after) if retry_after and retry_after.isdigit() else None)
    if status == 504:
        return UpstreamTimeout(text)
    if status >= 500:
        return UpstreamError(text)
    if status == 404:
        return UnknownVoice(text) if "voice" in message.lower() else NotFound(text)
    return InvalidRequest(text)


class FakeSynthesizer:
    """Deterministic stand-in engine. ``delay_s`` sleeps per 100 characters (a slow engine);
    ``fail`` may return an exception to raise for a text (fault injection); ``calls`` counts."""

    def __init__(
        self,
        *,
        sample_rate: int = 24000,
        seconds_per_char: float = 0.06,
        delay_s: float = 0.0,
        fail: Callable[[str], Exception | None] | None = None,
    ) -> None:
        self.sample_rate = sample_rate
        self.seconds_per_char = seconds_per_char
        self.delay_s = delay_s
        self.fail = fail
        self.calls: list[str] = []

    def render(self, text: str, voice: str, sample_rate: int | None = None) -> bytes:
        rate = sample_rate or self.sample_rate
        digest = hashlib.sha256(f"{voice}\x00{text}".encode()).digest()
        freq = 150.0 + int.from_bytes(digest[:2], "big") % 500
        n = max(1, round(len(text) * self.seconds_per_char * rate))
        t = np.arange(n, dtype=np.float64) / rate
        wave = 0.3 * np.sin(2 * np.pi * freq * t)
        return (np.round(wave * 32767)).astype("<i2").tobytes()

    async def synthesize(self, text: str, *, model: str, voice: str, options: dict[str, Any]) -> SynthResult:
        self.calls.append(text)
        if self.fail is not None and (exc := self.fail(text)) is not None:
            raise exc
        if self.delay_s:
            await asyncio.sleep(self.delay_s * max(1, len(text)) / 100)
        rate = int(options.get("sample_rate", self.sample_rate))
        return SynthResult(self.render(text, voice, rate), rate)
