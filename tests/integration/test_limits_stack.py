"""Rate limits and usage behind the auth guard on a real stack (tone workers, SQLite, API
keys), for both gateway servers: a tenant over its requests-per-minute gets 429 with
``Retry-After`` and OpenAI's ``x-ratelimit-*`` headers while another tenant is served; a
tenant's own limits (the tenants table) override the defaults; ``/v1/usage`` shows what each
tenant was served and no other tenant's figures; the job runners' chunks are not charged."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from tests.support.stacks import start_stack

from voxmesh.stack.core import Stack

pytestmark = pytest.mark.slow

SPEECH = {"model": "tone", "input": "Hello there.", "voice": "low", "response_format": "wav"}


@pytest.fixture(params=["fast", "aiohttp"])
async def stack(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[Stack, dict[str, str]]]:
    config = {"deployments": [
        {"name": "tone", "engine": "tone", "options": {"ms_per_char": 1}, "threads": 1,
         "replicas": {"min": 1, "max": 1, "warm": 0}}]}  # fmt: skip
    async with start_stack(tmp_path, config, gateway={"server": request.param}, auth={"mode": "api_keys"},
                           limits={"requests_per_minute": 600, "burst_s": 1.0},
                           jobs={"chunk_chars": 40, "poll_interval_s": 0.05}) as st:  # fmt: skip
        scopes = frozenset({"tts:speak", "jobs:write", "jobs:read"})
        await st.auth.store.create_tenant("slow", requests_per_minute=6)  # 0.1 req/s, burst 1 s -> 1 token
        _, slow = await st.auth.store.create_key("slow", scopes)
        _, fast = await st.auth.store.create_key("roomy", scopes)
        yield st, {"slow": slow, "roomy": fast}


async def _speak(session: aiohttp.ClientSession, url: str, key: str) -> tuple[int, dict[str, str], bytes]:
    async with session.post(url + "/v1/audio/speech", json=SPEECH, headers={"Authorization": f"Bearer {key}"}) as r:
        return r.status, dict(r.headers), await r.read()


async def test_tenant_limits_429_headers_and_usage(stack: tuple[Stack, dict[str, str]]) -> None:
    st, keys = stack
    async with aiohttp.ClientSession() as s:
        status, headers, _ = await _speak(s, st.url, keys["slow"])
        assert status == 200
        assert "x-ratelimit-remaining-requests" in {k.lower() for k in headers}
        status, headers, body = await _speak(s, st.url, keys["slow"])
        assert status == 429, body
        lower = {k.lower(): v for k, v in headers.items()}
        assert float(lower["retry-after"]) > 0
        assert lower["x-ratelimit-remaining-requests"] == "0"
        assert b"rate_limit" in body or b"limit" in body
        for _ in range(5):  # the other tenant is served meanwhile (600/min, burst of 10)
            status, _, _ = await _speak(s, st.url, keys["roomy"])
            assert status == 200
        async with s.get(st.url + "/v1/usage", headers={"Authorization": f"Bearer {keys['roomy']}"}) as r:
            assert r.status == 200
            usage: dict[str, Any] = await r.json()
        text = str(usage)
        assert "roomy" in text and "slow" not in text, usage
        assert str(5 * len(SPEECH["input"])) in text, usage  # characters synthesized by this tenant


async def test_job_chunks_are_not_charged(stack: tuple[Stack, dict[str, str]]) -> None:
    st, keys = stack
    text = "One sentence here. " * 8  # several chunks of 40 characters: more than the slow tenant's budget
    auth = {"Authorization": f"Bearer {keys['slow']}"}
    async with aiohttp.ClientSession() as s:
        async with s.post(st.url + "/v1/jobs", json={"text": text, "model": "tone", "voice": "low"}, headers=auth) as r:
            assert r.status == 201, await r.text()
            job = (await r.json())["id"]
        for _ in range(60):  # the tenant's own polls are charged: one a refill (10 s at 6 a minute)
            await asyncio.sleep(10.5)
            async with s.get(f"{st.url}/v1/jobs/{job}", headers=auth) as r:
                assert r.status == 200, await r.text()
                state = (await r.json())["state"]
            if state in ("succeeded", "failed"):
                break
        assert state == "succeeded"
