from __future__ import annotations

import io
import struct
import wave

import av
import numpy as np
import pytest
import soundfile as sf

from voxmesh.audio.encoding import FORMATS, encode, make_encoder
from voxmesh.errors import UnsupportedFormat


def _speechlike(rate: int, seconds: float) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)
    return (0.4 * env * (np.sin(2 * np.pi * 180 * t) + 0.3 * np.sin(2 * np.pi * 900 * t))).astype(np.float32)


def _decoded_seconds(data: bytes) -> tuple[float, int]:
    with av.open(io.BytesIO(data)) as c:
        samples, rate = 0, 0
        for frame in c.decode(audio=0):
            samples += frame.samples
            rate = frame.sample_rate
    return samples / rate, rate


# lossy codecs add priming/padding: at most ~2 codec frames (AAC 1024 priming + padding to 1024)
_TOL = {"wav": 1e-3, "pcm": 1e-3, "flac": 1e-3, "mp3": 0.08, "opus": 0.05}


@pytest.mark.parametrize("fmt", ["wav", "flac", "mp3", "opus", "aac"])
@pytest.mark.parametrize("rate", [16000, 22050, 24000, 44100, 48000])
@pytest.mark.parametrize("streaming", [False, True])
def test_every_format_decodes_with_the_right_duration(fmt: str, rate: int, streaming: bool) -> None:
    pieces = [_speechlike(rate, 0.4), _speechlike(rate, 0.7), _speechlike(rate, 0.3)]
    enc = make_encoder(fmt, rate, streaming=streaming)
    chunks = [enc.feed(p) for p in pieces]
    chunks.append(enc.close())
    data = b"".join(chunks)
    seconds, decoded_rate = _decoded_seconds(data)
    tol = 2048 / rate + 1e-3 if fmt == "aac" else _TOL[fmt]
    assert abs(seconds - 1.4) <= tol, (fmt, seconds)
    assert decoded_rate == (48000 if fmt == "opus" else rate)


@pytest.mark.parametrize("fmt", ["wav", "pcm", "mp3", "opus", "aac", "flac"])
def test_streaming_emits_bytes_before_close(fmt: str) -> None:
    enc = make_encoder(fmt, 24000, streaming=True)
    first = enc.feed(_speechlike(24000, 1.5))
    second = enc.feed(_speechlike(24000, 1.5))
    assert first and second, "audio must leave per piece, not only at close"
    enc.close()


def test_streaming_wav_header_has_unknown_sizes_and_plays() -> None:
    enc = make_encoder("wav", 22050, streaming=True)
    data = enc.feed(_speechlike(22050, 0.5)) + enc.feed(_speechlike(22050, 0.5)) + enc.close()
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    assert struct.unpack("<I", data[4:8])[0] == 0xFFFFFFFF
    assert struct.unpack("<I", data[40:44])[0] == 0xFFFFFFFF
    seconds, _ = _decoded_seconds(data)
    assert abs(seconds - 1.0) < 1e-3


def test_non_streaming_wav_header_is_exact() -> None:
    x = _speechlike(24000, 0.75)
    data = encode(x, 24000, "wav")
    with wave.open(io.BytesIO(data)) as w:
        assert w.getframerate() == 24000 and w.getnchannels() == 1 and w.getsampwidth() == 2
        assert w.getnframes() == len(x)
    assert struct.unpack("<I", data[4:8])[0] == len(data) - 8
    y, rate = sf.read(io.BytesIO(data), dtype="float32")
    assert rate == 24000 and np.max(np.abs(y - x)) < 1e-4


def test_pcm_is_s16le() -> None:
    x = np.array([0.0, 0.5, -0.5, 1.0, -1.0, 2.0], dtype=np.float32)
    data = encode(x, 16000, "pcm")
    assert np.frombuffer(data, "<i2").tolist() == [0, 16384, -16384, 32767, -32767, 32767]


def test_unknown_format_is_a_400() -> None:
    with pytest.raises(UnsupportedFormat, match="response_format"):
        make_encoder("ogg-vorbis", 24000, streaming=False)


def test_content_types() -> None:
    types = {f: make_encoder(f, 24000, streaming=False).content_type for f in FORMATS}
    assert types == {"wav": "audio/wav", "pcm": "audio/pcm", "flac": "audio/flac", "mp3": "audio/mpeg",
                     "opus": "audio/ogg", "aac": "audio/aac"}
