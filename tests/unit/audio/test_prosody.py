from __future__ import annotations

import numpy as np
import pytest

from voxmesh.audio.prosody import (
    PRESETS,
    Prosody,
    apply_gain,
    apply_prosody,
    blend_voice,
    pitch_shift,
    prosody_for,
    time_stretch,
)
from voxmesh.audio.stitch import pause_after, trim_silence
from voxmesh.engines.base import VoiceMix

RATE = 22050


def _voiced(f0: float, seconds: float = 1.0) -> np.ndarray:
    """A harmonic signal with a known fundamental, like a sustained vowel."""
    t = np.arange(int(RATE * seconds)) / RATE
    x = sum((0.5 / k) * np.sin(2 * np.pi * f0 * k * t) for k in range(1, 6))
    return (0.6 * x / np.max(np.abs(x))).astype(np.float32)


def f0_autocorr(x: np.ndarray, rate: int = RATE, lo: float = 60.0, hi: float = 500.0) -> float:
    x = x - x.mean()
    spec = np.fft.rfft(x, 2 * len(x))
    ac = np.fft.irfft(spec * np.conj(spec))[: len(x)]
    lags = np.arange(int(rate / hi), int(rate / lo))
    best = lags[np.argmax(ac[lags])]
    return rate / float(best)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x))))


@pytest.mark.parametrize("semitones", [-3.0, -1.0, 2.0, 3.0])
def test_pitch_shift_moves_f0_and_keeps_duration(semitones: float) -> None:
    x = _voiced(150.0)
    y = pitch_shift(x, RATE, semitones)
    assert len(y) == len(x)
    expected = 150.0 * 2 ** (semitones / 12)
    measured = f0_autocorr(y[2000:-2000])
    assert abs(12 * np.log2(measured / expected)) < 0.3, (measured, expected)


def test_time_stretch_changes_duration_not_pitch() -> None:
    x = _voiced(200.0)
    for tempo in (0.3, 0.8, 1.5, 3.0):
        y = time_stretch(x, RATE, tempo)
        assert abs(len(y) - len(x) / tempo) < 0.02 * len(x) / tempo
        assert abs(f0_autocorr(y[2000:-2000]) - 200.0) < 4.0


def test_gain_soft_limits_but_raises_energy() -> None:
    x = _voiced(150.0) * 1.5  # peak 0.9
    louder = apply_gain(x, 4.0)
    assert np.max(np.abs(louder)) <= 1.0
    assert rms(louder) > rms(x) * 1.2
    quieter = apply_gain(x, -4.0)
    assert rms(quieter) == pytest.approx(rms(x) * 10 ** (-4 / 20), rel=1e-4)


@pytest.mark.parametrize("emotion", list(PRESETS))
def test_presets_move_pitch_and_energy_the_documented_way(emotion: str) -> None:
    preset = prosody_for(emotion)
    x = _voiced(150.0)
    y = apply_prosody(x, RATE, preset)
    f0 = f0_autocorr(y[2000:-2000])
    if preset.pitch_semitones > 0:
        assert f0 > 150.0 * 2 ** ((preset.pitch_semitones - 0.5) / 12)
    elif preset.pitch_semitones < 0:
        assert f0 < 150.0 * 2 ** ((preset.pitch_semitones + 0.5) / 12)
    else:
        assert abs(f0 - 150.0) < 2.0
    ratio = rms(y) / rms(x)
    if preset.gain_db > 0:
        assert ratio > 1.05
    elif preset.gain_db < 0:
        assert ratio < 0.95
    else:
        assert ratio == pytest.approx(1.0, abs=1e-6)


def test_documented_directions() -> None:
    assert PRESETS["happy"].pitch_semitones > 0 and PRESETS["happy"].rate > 1
    assert PRESETS["sad"].pitch_semitones < 0 and PRESETS["sad"].rate < 1 and PRESETS["sad"].gain_db < 0
    assert PRESETS["angry"].gain_db > 0
    assert PRESETS["calm"].rate < 1 and PRESETS["calm"].gain_db < 0
    assert PRESETS["neutral"] == Prosody()
    with pytest.raises(ValueError, match="unknown emotion"):
        prosody_for("bored")


def test_blend_voice() -> None:
    female = frozenset({"jf_alpha", "jf_nezumi"})
    happy = PRESETS["happy"]
    mixed = blend_voice(VoiceMix.single("jf_alpha"), happy, female)
    assert dict(mixed.parts) == pytest.approx({"jf_alpha": 0.75, "jf_nezumi": 0.25})
    assert blend_voice(VoiceMix.single("jm_kumo"), happy, female) == VoiceMix.single("jm_kumo")
    assert blend_voice(VoiceMix.single("jf_nezumi"), happy, female) == VoiceMix.single("jf_nezumi")
    assert blend_voice(VoiceMix.single("jf_alpha"), PRESETS["neutral"], female) == VoiceMix.single("jf_alpha")


def test_trim_and_pauses() -> None:
    x = np.concatenate([np.zeros(RATE), _voiced(150.0, 0.5), np.zeros(RATE)]).astype(np.float32)
    y = trim_silence(x, RATE)
    assert 0.5 * RATE <= len(y) <= 0.5 * RATE + 0.1 * RATE
    assert trim_silence(np.zeros(100, np.float32), RATE).size == 0
    assert pause_after("Done.") > pause_after("then,") > pause_after("word") == 0.0
    assert pause_after("好的。") == pause_after("Really?”")
