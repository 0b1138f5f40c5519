from __future__ import annotations

import numpy as np
import pytest
from tests.unit.voices.clips import encode, speechlike

from voxmesh.errors import InvalidRequest, PayloadTooLarge
from voxmesh.voices.validate import Limits, validate_clip


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg", "mp3"])
def test_speech_in_each_format_passes(fmt: str) -> None:
    rate = 48000 if fmt == "ogg" else 24000  # ogg carries opus, which runs at 48 kHz
    pcm, report = validate_clip(encode(speechlike(5.0, rate), rate, fmt))
    assert report.format == fmt and report.sample_rate == rate
    assert 4.9 < report.duration_s < 5.2 and pcm.size == pytest.approx(16000 * report.duration_s, rel=0.01)
    assert report.voiced_fraction >= 0.4 and report.clipped_fraction == 0


@pytest.mark.parametrize(("pcm", "rate", "match"), [
    (speechlike(2.0), 16000, "give 3-30 s"),
    (speechlike(31.5), 16000, "longer than 30 s"),
    (speechlike(5.0, 8000), 8000, "too low"),
    (np.clip(speechlike(5.0) * 8, -1, 1), 16000, "clipped"),
    (speechlike(5.0) * 0.001, 16000, "near silent"),
    (0.3 * np.sin(2 * np.pi * 440 * np.arange(80000) / 16000).astype(np.float32), 16000, "constant level"),
    (np.concatenate([speechlike(1.0), np.zeros(16000 * 6, dtype=np.float32) + 1e-3]), 16000, "too little speech"),
])
def test_bad_clips_say_what_to_fix(pcm: np.ndarray, rate: int, match: str) -> None:
    with pytest.raises(InvalidRequest, match=match) as info:
        validate_clip(encode(pcm.astype(np.float32), rate), Limits())
    assert info.value.status == 400 and info.value.param == "file"


def test_undecodable_and_oversized() -> None:
    with pytest.raises(InvalidRequest, match=r"cannot be decoded|not accepted"):
        validate_clip(b"this is not audio at all" * 100)
    with pytest.raises(InvalidRequest, match="empty"):
        validate_clip(b"")
    with pytest.raises(PayloadTooLarge):
        validate_clip(b"x" * 2000, Limits(max_bytes=1000))
