"""CORS and metering headers on a live stack, on both gateway servers: the fast path's hot
routes and the aiohttp app answer alike."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from tests.support.stacks import start_stack

from voxmesh.stack import Stack
from voxmesh.tenancy import audio_seconds

pytestmark = pytest.mark.slow

CONFIG = {
    "deployments": [{"name": "tone", "engine": "tone", "options": {"ms_per_char": 10},
                     "replicas": {"min": 1, "max": 1, "warm": 0}, "threads": 1}],
    "aliases": {"tts-1": "tone"},
}  # fmt: skip
ORIGIN = "https://app.example"


@pytest.fixture(params=["fast", "aiohttp"])
async def stack(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stack]:
    async with start_stack(tmp_path, CONFIG, gateway={"server": request.param},
                           hardening={"cors_origins": [ORIGIN]}) as st:
        yield st


async def test_cors_and_audio_seconds_on_the_speech_route(stack: Stack) -> None:
    body = {"model": "tts-1", "input": "Hello there.", "voice": "low", "response_format": "wav"}
    async with aiohttp.ClientSession() as s:
        async with s.options(stack.url + "/v1/audio/speech", headers={
                "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type"}) as pre:  # fmt: skip
            assert pre.status == 204 and pre.headers["Access-Control-Allow-Origin"] == ORIGIN
        async with s.post(stack.url + "/v1/audio/speech", json=body, headers={"Origin": ORIGIN}) as resp:
            data = await resp.read()
            assert resp.status == 200
            assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
            # the worker's header says what the wav bytes hold: 12 characters at 10 ms, plus pauses
            seconds = float(resp.headers["X-Audio-Seconds"])
            no_header = {k: v for k, v in resp.headers.items() if k.lower() != "x-audio-seconds"}
            assert seconds >= 0.12
            assert audio_seconds(no_header, len(data), "wav") == pytest.approx(seconds, abs=0.002)
        async with s.post(stack.url + "/v1/audio/speech", json=body, headers={"Origin": "https://evil.example"}) as r:
            await r.read()
            assert r.status == 200 and "Access-Control-Allow-Origin" not in r.headers


async def test_too_many_headers_are_refused_on_both_servers(stack: Stack) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", stack.port)
    headers = b"".join(b"X-H%d: v\r\n" % i for i in range(150))  # the default limit is 100
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: t\r\n" + headers + b"\r\n")
    await writer.drain()
    out = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    status = int(out.split(b" ", 2)[1])
    # the fast server answers 431; aiohttp's parser (gateway.server=aiohttp) answers 400
    assert status == (431 if stack.settings.gateway.server == "fast" else 400), out[:200]
