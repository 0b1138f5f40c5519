"""The engine protocol: what a worker needs from a loaded model.

An engine is synchronous and thread-safe for concurrent ``synthesize_segment`` calls
(onnxruntime releases the GIL while it runs); the worker drives it from a thread pool that
it sizes to the cores. An engine never downloads anything: its weights come from installed
packages.

A TTS engine turns one *segment* (a sentence or clause, already normalized, with any
pronunciation overrides already turned into phoneme spans) into mono float32 PCM at
``capabilities().sample_rate``. Chunking, prosody, resampling and encoding happen around it
in :mod:`voxmesh.worker.synthesis`, so every engine gets them the same way.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

__all__ = [
    "WARM_PHONEMES",
    "Capabilities",
    "CloningTtsEngine",
    "Engine",
    "EngineInfo",
    "Interrupt",
    "Pcm",
    "Reference",
    "Segment",
    "SegmentInterrupted",
    "Span",
    "TtsEngine",
    "Voice",
    "VoiceMix",
]

Pcm = npt.NDArray[np.float32]

# IPA of a typical 100-character English sentence ("The quick brown fox jumps over the lazy
# dog, while the patient listener waits for the next sentence."): engines warm their
# sessions with it, so the arenas are sized for real sentences before the first request.
WARM_PHONEMES = (
    "ðə kwˈɪk bɹˈaʊn fˈɑːks dʒˈʌmps ˌoʊvɚ ðə lˈeɪzi dˈɑːɡ, wˌaɪl ðə pˈeɪʃənt lˈɪsənɚ wˈeɪts fɚðə nˈɛkst sˈɛntəns."
)


@dataclass(frozen=True)
class Voice:
    id: str
    name: str
    languages: tuple[str, ...]
    gender: str | None = None
    description: str = ""


@dataclass(frozen=True)
class Capabilities:
    kind: str  # "tts" | "mt" | "speaker"
    sample_rate: int = 0
    languages: tuple[str, ...] = ()
    streaming: bool = True
    phoneme_input: bool = False
    voice_blending: bool = False
    max_segment_chars: int = 400
    voice_cloning: bool = False  # takes a reference clip + transcript (CloningTtsEngine)


@dataclass(frozen=True)
class Span:
    """Part of a segment: plain text, or phonemes in the engine's phoneme alphabet."""

    text: str
    is_phonemes: bool = False


@dataclass(frozen=True)
class Segment:
    spans: tuple[Span, ...]
    language: str

    @property
    def text(self) -> str:
        return "".join(s.text for s in self.spans)


@dataclass(frozen=True)
class Reference:
    """A speaker to clone: a 16 kHz mono 16-bit WAV (3-30 s) and what is said in it."""

    wav16k: bytes
    transcript: str


@dataclass(frozen=True)
class VoiceMix:
    """A voice, or a weighted blend of voices (weights sum to 1), optionally moved by a style
    ``offset`` added to every row of the blended table (engines with ``voice_blending`` only:
    how a matched voice travels from the gateway to the worker), or a ``reference`` to clone
    (engines with ``voice_cloning`` only)."""

    parts: tuple[tuple[str, float], ...]
    offset: tuple[float, ...] = ()
    reference: Reference | None = None

    @classmethod
    def single(cls, voice: str) -> VoiceMix:
        return cls(((voice, 1.0),))

    @property
    def primary(self) -> str:
        return max(self.parts, key=lambda p: p[1])[0]


class SegmentInterrupted(Exception):
    """The segment's inference was stopped through its :class:`Interrupt`; nothing was
    produced and the caller runs the segment again (internal: never reaches a client)."""


class Interrupt:
    """Lets another thread stop one segment's inference (the core scheduler takes the cores
    of a segment that has just started with all of them back for a newcomer).

    The engine registers how to stop its running call with :meth:`on_fire` (onnxruntime: set
    the run's ``terminate`` flag) and raises :class:`SegmentInterrupted` when the call ends
    because of it. :meth:`fire` may come before, during or after the call: before, the hook
    runs at registration; after, it changes nothing (the segment is done).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hooks: list[Callable[[], None]] = []
        self.fired = False

    def on_fire(self, hook: Callable[[], None]) -> None:
        with self._lock:
            if not self.fired:
                self._hooks.append(hook)
                return
        hook()

    def fire(self) -> None:
        with self._lock:
            if self.fired:
                return
            self.fired = True
            hooks, self._hooks = self._hooks, []
        for hook in hooks:
            hook()


@runtime_checkable
class Engine(Protocol):
    name: str

    def load(self, threads: int) -> None: ...

    def warm_up(self) -> None: ...

    def capabilities(self) -> Capabilities: ...


@runtime_checkable
class TtsEngine(Engine, Protocol):
    def voices(self) -> list[Voice]: ...

    def phonemize(self, text: str, language: str) -> str:
        """The engine's phonemes for plain text (used for pronunciation overrides and tests)."""
        ...

    def unknown_phonemes(self, phonemes: str, language: str) -> str:
        """The symbols of ``phonemes`` the model has no id for ("" when all are known);
        the pipeline rejects pronunciation overrides that use them (400) before synthesis."""
        ...

    def synthesize_segment(
        self, segment: Segment, voice: VoiceMix, speed: float, *, threads: int | None = None,
        interrupt: Interrupt | None = None,
    ) -> Pcm:
        """Mono float32 PCM in [-1, 1]. ``threads`` picks an inference session sized for that
        many cores, where the engine keeps several (load-adaptive parallelism). An engine that
        can stop mid-inference honours ``interrupt`` (raising :class:`SegmentInterrupted`);
        one that cannot ignores it and finishes the segment."""
        ...


@runtime_checkable
class CloningTtsEngine(TtsEngine, Protocol):
    """A TTS engine that speaks in the voice of a reference clip (zero-shot cloning).

    ``synthesize_segment`` with a :class:`VoiceMix` that carries a ``reference`` clones it;
    ``synthesize_cloned`` is the same for one piece of text, without the pipeline around it."""

    def synthesize_cloned(self, text: str, reference: Reference, language: str, speed: float) -> Pcm:
        """Mono float32 PCM at ``capabilities().sample_rate`` of ``text`` in the reference's voice."""
        ...


@dataclass
class EngineInfo:
    """What a worker reports about its engine (``GET /info``)."""

    engine: str
    model: str
    capabilities: Capabilities
    voices: list[Voice] = field(default_factory=list)
