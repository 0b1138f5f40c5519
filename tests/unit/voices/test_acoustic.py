"""The encoder-free acoustic term: pitch and spectral envelope of synthetic voiced sounds."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from voxmesh.voices.acoustic import acoustic_features, acoustic_similarity

RATE = 16000


def vowel(f0: float, formants: tuple[float, ...], seconds: float = 1.5) -> npt.NDArray[np.float32]:
    """A pulse train at ``f0`` through resonators at ``formants`` (a crude voiced vowel)."""
    t = np.arange(int(seconds * RATE)) / RATE
    src = np.zeros_like(t)
    src[(np.arange(t.size) % int(RATE / f0)) == 0] = 1.0
    spec = np.fft.rfft(src)
    freqs = np.fft.rfftfreq(src.size, 1 / RATE)
    gain = sum(1.0 / (1.0 + ((freqs - f) / 80.0) ** 2) for f in formants)
    out = np.fft.irfft(spec * gain, n=src.size)
    return (0.3 * out / np.abs(out).max()).astype(np.float32)


def test_pitch_is_found_within_a_semitone() -> None:
    for f0 in (90.0, 130.0, 220.0):
        st = acoustic_features(vowel(f0, (700.0, 1200.0, 2600.0))).f0_semitones
        assert st is not None and abs(st - 12 * np.log2(f0 / 100)) < 1.0, f0


def test_similarity_orders_pitch_and_envelope() -> None:
    a = acoustic_features(vowel(120.0, (700.0, 1200.0, 2600.0)))
    near = acoustic_features(vowel(125.0, (720.0, 1250.0, 2600.0)))
    octave = acoustic_features(vowel(240.0, (700.0, 1200.0, 2600.0)))
    other_vowel = acoustic_features(vowel(120.0, (300.0, 2300.0, 3000.0)))
    assert abs(acoustic_similarity(a, a) - 1.0) < 1e-9
    assert acoustic_similarity(a, near) > acoustic_similarity(a, octave)
    assert acoustic_similarity(a, near) > acoustic_similarity(a, other_vowel)


def test_silence_has_no_pitch() -> None:
    f = acoustic_features(np.zeros(RATE, dtype=np.float32))
    assert f.f0_semitones is None and acoustic_similarity(f, f) <= 0.5
