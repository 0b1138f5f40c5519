"""Synthetic clips for the enrolment tests: speech-like (voiced syllables with pauses), tone, noise."""

from __future__ import annotations

import io

import av
import numpy as np
import numpy.typing as npt


def speechlike(seconds: float, rate: int = 16000, seed: int = 0, f0: float = 120.0) -> npt.NDArray[np.float32]:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    pitch = f0 * (1 + 0.1 * np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    env = np.zeros_like(t)
    pos = 0.0
    while pos < seconds:  # syllables of 120-300 ms, pauses of 30-150 ms
        dur = rng.uniform(0.12, 0.3)
        a, b = int(pos * rate), int(min(seconds, pos + dur) * rate)
        env[a:b] = np.hanning(b - a) * rng.uniform(0.4, 1.0)
        pos += dur + rng.uniform(0.03, 0.15)
    pcm = 0.3 * voiced * env + 0.002 * rng.standard_normal(t.size)
    return pcm.astype(np.float32)


def encode(pcm: npt.NDArray[np.float32], rate: int, fmt: str = "wav") -> bytes:
    codec = {"wav": "pcm_s16le", "flac": "flac", "ogg": "libopus", "mp3": "libmp3lame"}[fmt]
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=fmt) as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")  # type: ignore[call-overload]
        sample_fmt = stream.codec_context.codec.audio_formats[0].name
        frame = av.AudioFrame.from_ndarray(np.clip(pcm, -1, 1).reshape(1, -1).astype(np.float32), format="flt",
                                           layout="mono")
        frame.sample_rate = rate
        resampler = av.AudioResampler(format=sample_fmt, layout="mono", rate=rate)
        for f in resampler.resample(frame):
            for packet in stream.encode(f):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()
