"""Run the shared harness's ``loadgen.py`` unchanged, with another request body.

The shared load generator posts ``{"text": ...}``. voxmesh speaks the OpenAI body, so this
shim swaps the ``aiohttp`` name *inside the loadgen module* for a namespace whose
``ClientSession.post`` rewrites ``json={"text": t}`` into the body chosen with ``--body``.
Everything that is measured (closed loop, warm-up, window, WAV duration, CPU accounting,
quiet waits, re-runs) is the harness's own code.

usage (in the peers' client venv, from the work folder):
    python loadgen_body.py --body openai:tts-en:joe --url http://127.0.0.1:P/v1/audio/speech ...
    --body text               the harness's own body (no rewriting at all)
    --body openai:MODEL:VOICE {"model": MODEL, "input": TEXT, "voice": VOICE, "response_format": "wav"}
"""

from __future__ import annotations

import asyncio
import os
import sys
import types
from typing import Any

import aiohttp

HERE = os.environ.get("PEERS_HARNESS") or os.getcwd()
sys.path.insert(0, HERE)
import loadgen  # noqa: E402  (the harness copy in the work folder)


def make_body(spec: str) -> Any:
    if spec == "text":
        return None
    kind, model, voice = spec.split(":")
    if kind != "openai":
        raise SystemExit(f"--body: unknown kind {kind!r} (text | openai:MODEL:VOICE)")

    def body(text: str) -> dict[str, str]:
        return {"model": model, "input": text, "voice": voice, "response_format": "wav"}

    return body


class _Session:
    """Wraps one real aiohttp.ClientSession; only ``post``'s JSON body changes."""

    body: Any = None

    def __init__(self, **kw: Any) -> None:
        self._s = aiohttp.ClientSession(**kw)

    async def __aenter__(self) -> _Session:
        await self._s.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> Any:
        return await self._s.__aexit__(*exc)

    def post(self, url: str, *, json: dict[str, str], **kw: Any) -> Any:
        return self._s.post(url, json=self.body(json["text"]), **kw)


def main() -> None:
    argv = sys.argv[1:]
    spec = "text"
    if "--body" in argv:
        i = argv.index("--body")
        spec = argv[i + 1]
        del argv[i:i + 2]
    body = make_body(spec)
    if body is not None:
        _Session.body = staticmethod(body)
        loadgen.aiohttp = types.SimpleNamespace(  # type: ignore[attr-defined]
            ClientSession=_Session, TCPConnector=aiohttp.TCPConnector, ClientTimeout=aiohttp.ClientTimeout)
    sys.argv = [os.path.join(HERE, "loadgen.py"), *argv]
    asyncio.run(loadgen.main())


if __name__ == "__main__":
    main()
