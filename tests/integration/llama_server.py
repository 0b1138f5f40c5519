"""llama-cpp-python's own OpenAI-compatible server, run unmodified as an external process on
loopback with the packaged GGUF: the stand-in for a vLLM/SGLang server in tests."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest
from tests.support.procs import free_port, stop_process


@contextlib.contextmanager
def llama_chat_server(alias: str, timeout_s: float = 90) -> Iterator[str]:
    from voxmesh.engines.llamacpp import packaged_model_path

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(packaged_model_path()), "--host", "127.0.0.1",
         "--port", str(port), "--n_ctx", "2048", "--n_threads", "1", "--chat_format", "gemma",
         "--model_alias", alias],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
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
        stop_process(proc, 10)
