"""How voice matching renders a candidate style: 16 kHz mono PCM for the speaker encoder.

* :class:`HttpRenderer`: through the gateway to the kokoro deployment (``voice_style`` in the
  speech body), so fitting gets the data plane's balancing, retries and admission like any
  caller (label ``voice-fitter``); what the running stack uses.
* :class:`EngineRenderer`: an in-process engine, through the same synthesis pipeline as a
  worker (benchmarks and tests).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from voxmesh.voices.style import Style

__all__ = ["FIT_TEXTS", "HELDOUT_TEXTS", "SECOND_FIT_TEXTS", "VALIDATION_TEXTS", "EngineRenderer", "HttpRenderer"]

RATE = 16000
# fitting texts (every candidate reads both: a fit to one sentence does not carry over), the
# validation text and the held-out text, per language; none is used for two of these jobs
FIT_TEXTS = {
    "en": "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background.",
    "zh": "今天天气很好，我们去公园散步吧。这本书非常有意思。",
    "ja": "今日はとても良い天気ですね。公園を散歩しましょう。",
}
SECOND_FIT_TEXTS = {
    "en": "Rice is often served in round bowls. The juice of lemons makes fine punch.",
    "zh": "他喜欢听音乐，也喜欢唱歌。这个城市的交通非常方便。",
    "ja": "毎朝七時に起きて、朝ご飯を食べます。",
}
VALIDATION_TEXTS = {
    "en": "The boy was there when the sun rose. A rod is used to catch pink salmon.",
    "zh": "请把窗户打开，房间里太热了。我们明天早上八点出发。",
    "ja": "駅までは歩いて十分ぐらいかかります。",
}
HELDOUT_TEXTS = {
    "en": "Four hours of steady work faced us. A large size in stockings is hard to sell.",
    "zh": "明天下午三点我们在学校门口见面，然后一起去图书馆。",
    "ja": "明日の午後三時に駅の前で会いましょう。",
}


class HttpRenderer:
    def __init__(self, base_url: str, model: str, language: str, headers: Mapping[str, str] | None = None) -> None:
        from voxmesh.jobs.synth import HttpSynthesizer

        self.model = model
        self.language = language
        self.synth = HttpSynthesizer(base_url, headers={"X-Voxmesh-Caller": "voice-fitter", **(headers or {})},
                                     sample_rate=RATE, timeout_s=120.0)

    async def __call__(self, style: Style, text: str) -> npt.NDArray[np.float32]:
        result = await self.synth.synthesize(text, model=self.model, voice="default", options={
            "voice_style": style.as_dict(), "sample_rate": RATE, "language": self.language})
        pcm = np.frombuffer(result.pcm_s16le, dtype="<i2").astype(np.float32) / 32768.0
        if result.sample_rate != RATE:
            from voxmesh.audio.resample import resample

            pcm = resample(pcm, result.sample_rate, RATE)
        return pcm

    async def close(self) -> None:
        await self.synth.close()


class EngineRenderer:
    def __init__(self, engine: Any, language: str, threads: int = 2) -> None:
        self.engine = engine
        self.language = language
        self.threads = threads

    def _render(self, style: Style, text: str) -> npt.NDArray[np.float32]:
        from voxmesh.api.schemas import SpeechRequest
        from voxmesh.text.pronunciation import PronunciationDictionary
        from voxmesh.worker.synthesis import plan_speech, render_all

        req = SpeechRequest.model_validate({"model": self.engine.name, "input": text, "language": self.language,
                                            "voice_style": style.as_dict(), "response_format": "pcm",
                                            "sample_rate": RATE})
        plan = plan_speech(req, self.engine, PronunciationDictionary())
        return render_all(self.engine, plan, threads=self.threads)

    async def __call__(self, style: Style, text: str) -> npt.NDArray[np.float32]:
        return await asyncio.to_thread(self._render, style, text)
