"""A stand-in for CosyVoice's FastAPI server (runtime/python/fastapi/server.py at commit
1cfc5dd0777b3a4fb83bbe83174b7c22e92a5843), faithful to its HTTP contract, for the adapter tests.

Contract reproduced: ``GET /inference_zero_shot`` only (FastAPI answers 405 to other methods on
a GET route), multipart form with ``tts_text``, ``prompt_text`` and file ``prompt_wav``; a
missing field is FastAPI's 422 ``{"detail": [{"loc": ["body", name], "msg": "field required",
"type": "value_error.missing"}]}``; a prompt that is not audio fails in ``load_wav`` (500); the
answer is raw int16 little-endian mono PCM at the model's rate, streamed in chunks, with no
rate header. What it says is a deterministic tone (length grows with the text, pitch from the
prompt audio), not speech: no model can run here.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import wave
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiohttp import web


@dataclass
class Seen:
    method: str
    fields: dict[str, str]
    prompt_wav: bytes


@dataclass
class StandIn:
    sample_rate: int = 22050
    delay_s: float = 0.0
    fail_status: int | None = None
    seen: list[Seen] = field(default_factory=list)

    async def zero_shot(self, request: web.Request) -> web.StreamResponse:
        fields: dict[str, str] = {}
        prompt = b""
        if request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                data: Any = part
                if data.name == "prompt_wav":
                    prompt = bytes(await data.read())
                else:
                    fields[str(data.name)] = (await data.read(decode=True)).decode()
        missing = [n for n in ("tts_text", "prompt_text") if n not in fields] + ([] if prompt else ["prompt_wav"])
        if missing:
            return web.json_response({"detail": [{"loc": ["body", n], "msg": "field required",
                                                  "type": "value_error.missing"} for n in missing]}, status=422)
        self.seen.append(Seen(request.method, fields, prompt))
        if self.fail_status is not None:
            return web.Response(status=self.fail_status, text="Internal Server Error")
        try:
            with wave.open(io.BytesIO(prompt)) as w:
                frames = w.readframes(w.getnframes())
        except (wave.Error, EOFError):
            return web.Response(status=500, text="Internal Server Error")
        await asyncio.sleep(self.delay_s)
        f0 = 100 + int(hashlib.sha256(frames).hexdigest()[:4], 16) % 150
        n = int(self.sample_rate * (0.3 + 0.06 * len(fields["tts_text"])))
        pcm = (0.4 * np.sin(2 * np.pi * f0 * np.arange(n) / self.sample_rate) * 2**15).astype("<i2").tobytes()
        resp = web.StreamResponse()
        await resp.prepare(request)
        for i in range(0, len(pcm), 8192):
            await resp.write(pcm[i:i + 8192])
        await resp.write_eof()
        return resp

    def app(self) -> web.Application:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_get("/inference_zero_shot", self.zero_shot)
        return app
