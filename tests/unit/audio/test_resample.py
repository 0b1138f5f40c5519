from __future__ import annotations

import numpy as np
import pytest

from voxmesh.audio.resample import SUPPORTED_RATES, resample


def _tone(freq: float, rate: int, seconds: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize("src", [22050, 24000])
@pytest.mark.parametrize("dst", SUPPORTED_RATES)
def test_tone_survives_resampling(src: int, dst: int) -> None:
    x = _tone(440.0, src)
    y = resample(x, src, dst)
    assert y.dtype == np.float32
    assert len(y) == -(-len(x) * dst // src)
    t = np.arange(len(y)) / dst
    ref = 0.5 * np.sin(2 * np.pi * 440.0 * t)
    inner = slice(dst // 20, -dst // 20)  # edges see the zero padding
    assert np.max(np.abs(y[inner] - ref[inner])) < 1e-3


def test_downsampling_removes_content_above_new_nyquist() -> None:
    x = _tone(10_000.0, 24000)  # above 8 kHz, must not alias into 16 kHz output
    y = resample(x, 24000, 16000)
    assert np.sqrt(np.mean(y[800:-800] ** 2)) < 1e-3


def test_identity_and_empty() -> None:
    x = _tone(300.0, 16000, 0.01)
    assert np.array_equal(resample(x, 16000, 16000), x)
    assert resample(np.zeros(0, np.float32), 22050, 48000).size == 0
    with pytest.raises(ValueError):
        resample(x, 0, 16000)
