"""engines/remote.py against llama-cpp-python's own OpenAI-compatible server, run unmodified as
an external process on loopback (``python -m llama_cpp.server``) with the packaged GGUF."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import replace

import pytest

from voxmesh import errors
from voxmesh.engines.remote import RemoteChatEngine
from voxmesh.mt.prompts import GREEDY

pytest.importorskip("llama_cpp")
pytest.importorskip("fastapi", reason="llama-cpp-python[server] deps (fastapi, uvicorn, sse-starlette)")

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def chat_server() -> Iterator[str]:
    from voxmesh.engines.llamacpp import packaged_model_path

    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(packaged_model_path()), "--host", "127.0.0.1",
         "--port", str(port), "--n_ctx", "2048", "--n_threads", "1", "--chat_format", "gemma",
         "--model_alias", "gemma-mt"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "/v1/models", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("llama_cpp.server did not start")
                time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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
