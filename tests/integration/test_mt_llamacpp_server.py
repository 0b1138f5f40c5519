"""engines/remote.py against llama-cpp-python's own OpenAI-compatible server, run unmodified as
an external process on loopback (``python -m llama_cpp.server``) with the packaged GGUF."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from tests.integration.llama_server import llama_chat_server

from voxmesh import errors
from voxmesh.engines.remote import RemoteChatEngine
from voxmesh.mt.prompts import GREEDY

pytest.importorskip("llama_cpp")
pytest.importorskip("fastapi", reason="llama-cpp-python[server] deps (fastapi, uvicorn, sse-starlette)")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def chat_server() -> Iterator[str]:
    with llama_chat_server("gemma-mt") as url:
        yield url


async def test_translate_and_stream_through_llama_cpp_server(chat_server: str) -> None:
    engine = RemoteChatEngine(chat_server + "/v1", model="gemma-mt", max_concurrency=2, timeout_s=120,
                              sampling=replace(GREEDY, max_new_tokens=24))
    try:
        out = await engine.atranslate(["Good morning.", "我饿了。"], "en", "zh")
        assert len(out) == 2 and all(isinstance(t, str) and t.strip() for t in out)
        pieces = [p async for p in engine.astream(["Thank you very much."], "en", "zh")]
        assert pieces and all(p.index == 0 for p in pieces)
        assert "".join(p.text for p in pieces).strip()
    finally:
        await engine.aclose()


async def test_server_errors_map_to_voxmesh_errors(chat_server: str) -> None:
    engine = RemoteChatEngine(chat_server, model="gemma-mt", timeout_s=120)
    try:
        with pytest.raises(errors.UpstreamError) as err:  # 2048-token context: the server answers 400
            await engine.atranslate(["word " * 3000], "en", "zh")
        assert "400" in err.value.message and "context" in err.value.message.lower()
    finally:
        await engine.aclose()
