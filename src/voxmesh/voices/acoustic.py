"""Encoder-free acoustic likeness of two clips: pitch and long-term spectral envelope.

Voice matching scores candidates with a speaker encoder, and the search then learns that
encoder's quirks (the fitted gain shrinks when a different encoder judges). This term is
measured on the signal itself, so no encoder's quirks can be fitted through it:

* **pitch**: the median F0 of voiced frames (normalised autocorrelation on 40 ms frames every
  10 ms, 60-450 Hz, a frame is voiced when its peak is above 0.45), in semitones;
* **spectral envelope**: the long-term average spectrum on 40 mel bands (0-8 kHz), in log
  power, level removed (so loudness does not count, only its shape: vocal tract and voice
  quality).

``acoustic_similarity`` = ``0.5 * exp(-(dF0 / 4 st)^2) + 0.5 * cos(envelope_a, envelope_b)``,
1 for identical clips. Limits: a median F0 misses intonation, the envelope mixes speaker and
phonetic content (use texts of similar length), and an octave error on a creaky voice moves F0
by 12 semitones (the median over a few seconds of speech makes that rare).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["AcousticFeatures", "acoustic_features", "acoustic_similarity"]

RATE = 16000
_FRAME, _HOP, _N_FFT, _BANDS = 640, 160, 1024, 40
_F0_MIN, _F0_MAX, _VOICED = 60.0, 450.0, 0.45


@dataclass(frozen=True)
class AcousticFeatures:
    f0_semitones: float | None  # median F0 in semitones above 100 Hz; None: no voiced frame
    envelope: npt.NDArray[np.float64]  # 40 mel bands, log power, mean removed


def _mel_filters() -> npt.NDArray[np.float64]:
    def mel(f: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return 2595.0 * np.log10(1.0 + f / 700.0)

    edges_mel = np.linspace(0.0, float(mel(np.array(RATE / 2.0))), _BANDS + 2)
    edges = 700.0 * (10.0 ** (edges_mel / 2595.0) - 1.0)
    freqs = np.fft.rfftfreq(_N_FFT, 1.0 / RATE)
    fb = np.zeros((_BANDS, freqs.size))
    for i in range(_BANDS):
        lo, mid, hi = edges[i], edges[i + 1], edges[i + 2]
        fb[i] = np.clip(np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)), 0.0, None)
    return fb


_FB = _mel_filters()


def _frames(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    if x.size < _FRAME:
        x = np.pad(x, (0, _FRAME - x.size))
    return np.lib.stride_tricks.sliding_window_view(x, _FRAME)[::_HOP] * np.hanning(_FRAME)


def acoustic_features(pcm16k: npt.NDArray[np.float32]) -> AcousticFeatures:
    x = np.asarray(pcm16k, dtype=np.float64)
    frames = _frames(x)
    spec = np.abs(np.fft.rfft(frames, n=_N_FFT, axis=1)) ** 2
    energy = spec.sum(axis=1)
    speech = energy > 0.05 * np.percentile(energy, 95) if energy.size else energy > 0
    if not speech.any():
        speech = np.ones_like(energy, dtype=bool)
    env = np.log10(spec[speech].mean(axis=0) @ _FB.T + 1e-10)
    env = env - env.mean()
    # F0: autocorrelation = inverse FFT of the power spectrum (zero-padded, so linear)
    ac = np.fft.irfft(spec[speech], n=_N_FFT, axis=1)
    lo, hi = int(RATE / _F0_MAX), int(RATE / _F0_MIN)
    norm = ac[:, lo:hi + 1] / np.maximum(ac[:, :1], 1e-12)
    lag = norm.argmax(axis=1)
    peak = norm[np.arange(norm.shape[0]), lag]
    voiced = peak > _VOICED
    f0: float | None = None
    if voiced.any():
        f0 = float(np.median(RATE / (lag[voiced] + lo)))
    return AcousticFeatures(None if f0 is None else 12.0 * float(np.log2(f0 / 100.0)), env)


def acoustic_similarity(a: AcousticFeatures, b: AcousticFeatures) -> float:
    """1 for identical clips; see the module doc."""
    na, nb = float(np.linalg.norm(a.envelope)), float(np.linalg.norm(b.envelope))
    env = float(a.envelope @ b.envelope / (na * nb)) if na > 0 and nb > 0 else 0.0
    if a.f0_semitones is None or b.f0_semitones is None:
        pitch = 0.0
    else:
        pitch = float(np.exp(-(((a.f0_semitones - b.f0_semitones) / 4.0) ** 2)))
    return 0.5 * pitch + 0.5 * env
