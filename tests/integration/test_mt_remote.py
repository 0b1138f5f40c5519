"""engines/remote.py against a scripted OpenAI-compatible server on loopback (protocol and error
mapping); the test against llama-cpp-python's real server is in test_mt_llamacpp_server.py."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from voxmesh import errors
from voxmesh.engines.remote import RemoteChatEngine
from voxmesh.mt.prompts import GREEDY


class FakeChat:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.status = 200

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.bodies.append(body)
        if self.status != 200:
            return web.json_response({"error": {"message": "busy"}}, status=self.status, headers={"Retry-After": "3"})
        text = body["messages"][0]["content"].rsplit("\n", 1)[-1]
        answer = f" <{text}>\n\nNote: extra"
        if not body.get("stream"):
            return web.json_response({"choices": [{"message": {"role": "assistant", "content": answer}}]})
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for word in answer.split(" "):
            chunk = {"choices": [{"delta": {"content": word + " "}}]}
            await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())
        await resp.write(b"data: [DONE]\n\n")
        return resp


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeChat, str]]:
    chat = FakeChat()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield chat, f"http://127.0.0.1:{port}/v1"
    await runner.cleanup()


async def test_sends_hymt_prompt_and_sampling_and_cleans_answer(fake: tuple[FakeChat, str]) -> None:
    chat, url = fake
    engine = RemoteChatEngine(url, model="hy-mt1.5", api_key="s3cret")
    try:
        out = await engine.atranslate(["Hello.", "Bye."], "en", "zh")
        assert out == ["<Hello.>", "<Bye.>"]
        body = chat.bodies[0]
        assert body["model"] == "hy-mt1.5"
        assert body["messages"][0]["content"].startswith("将以下文本翻译为中文")
        assert (body["top_k"], body["top_p"], body["temperature"], body["repetition_penalty"]) == (20, 0.6, 0.7, 1.05)
        await engine.atranslate(["x"], "en", "zh", params=GREEDY)
        assert chat.bodies[-1]["temperature"] == 0.0
        pieces = [p async for p in engine.astream(["One.", "Two."], "en", "de")]
        assert {p.index for p in pieces} == {0, 1}
        assert "".join(p.text for p in pieces if p.index == 0).startswith("<One.>")
    finally:
        await engine.aclose()


async def test_error_mapping(fake: tuple[FakeChat, str]) -> None:
    chat, url = fake
    engine = RemoteChatEngine(url)
    try:
        chat.status = 503
        with pytest.raises(errors.Overloaded) as err:
            await engine.atranslate(["x"], "en", "zh")
        assert err.value.retry_after == 3.0
        chat.status = 400
        with pytest.raises(errors.UpstreamError, match="busy"):
            await engine.atranslate(["x"], "en", "zh")
    finally:
        await engine.aclose()
    dead = RemoteChatEngine("http://127.0.0.1:9")
    with pytest.raises(errors.UpstreamError, match="cannot reach"):
        await dead.atranslate(["x"], "en", "zh")
    await dead.aclose()
