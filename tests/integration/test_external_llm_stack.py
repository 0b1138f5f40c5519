"""An external OpenAI-compatible chat server (llama-cpp-python's own server, run unmodified)
as a deployment behind the gateway, with the gateway's governance: translation requests go
gateway -> MT worker (engine: remote) -> gateway data plane -> the external server(s). One of
the two declared endpoints is dead: balancing, retries and the breaker keep clients whole."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from tests.integration.llama_server import llama_chat_server
from tests.support.procs import free_port
from tests.support.stacks import start_stack

from voxmesh.stack import Stack

pytest.importorskip("llama_cpp")
pytest.importorskip("fastapi", reason="llama-cpp-python[server] deps (fastapi, uvicorn, sse-starlette)")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def chat_server() -> Iterator[str]:
    with llama_chat_server("hy-mt-gpu") as url:
        yield url


@pytest.fixture
async def stack(chat_server: str, tmp_path: Path) -> AsyncIterator[Stack]:
    dead = f"http://127.0.0.1:{free_port()}"
    cfg = {"deployments": [
        {"name": "hy-mt-gpu", "external": {"urls": [chat_server, dead], "kind": "chat"}},
        {"name": "mt-hy", "engine": "remote", "threads": 1, "replicas": {"min": 1, "max": 1},
         "options": {"via": "hy-mt-gpu", "timeout_s": 120, "max_concurrency": 2}},
    ]}
    async with start_stack(tmp_path, cfg) as st:
        yield st


async def test_translation_through_governed_external_server(stack: Stack) -> None:
    async with aiohttp.ClientSession() as session:
        texts = ["Good morning.", "Thank you very much.", "Where is the station?"]
        for text in texts:
            async with session.post(stack.url + "/translate", json={"q": text, "source": "en", "target": "zh"}) as r:
                body = await r.json()
                assert r.status == 200, body
                assert body["translatedText"].strip()
        # the OpenAI-compatible chat route is governed too, routed by model
        chat = {"model": "hy-mt-gpu", "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 8}
        async with session.post(stack.url + "/v1/chat/completions", json=chat) as r:
            assert r.status == 200, await r.text()
            assert (await r.json())["choices"]
        async with session.get(stack.url + "/admin/topology") as r:
            topo = await r.json()
    ext = topo["deployments"]["hy-mt-gpu"]
    assert ext["requests"] >= len(texts) + 1
    assert ext["success_rate"] == 1.0
    dead = next(ep for ep in ext["endpoints"] if ep["id"] == "hy-mt-gpu-1")
    live = next(ep for ep in ext["endpoints"] if ep["id"] == "hy-mt-gpu-0")
    assert live["requests"] >= len(texts)
    assert dead["success_rate"] in (0.0, None) or dead["requests"] == 0
