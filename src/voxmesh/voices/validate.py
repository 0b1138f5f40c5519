"""Validation of an enrolment clip: decode with limits, then check it is usable speech.

Decoding uses PyAV in-process (no ffmpeg shell-out) with hard limits: the upload size, the
container formats we accept (wav, mp3, flac, ogg), the audio streams' count, and the decoded
duration (decoding stops past the maximum, so a crafted file that claims hours costs nothing).

Checks, each a 400 that says what to fix:

==================  ==========================================================================
decodable           a wav/mp3/flac/ogg file with one audio stream that PyAV decodes
sample rate         >= 16 kHz (speaker encoders work at 16 kHz; below that the voice is muffled)
duration            3-30 s (voice matching needs a few sentences; longer adds nothing)
clipping            < 1 % of samples at full scale (|x| >= 0.999): re-record with lower gain
level               RMS >= -45 dBFS: the clip is near silent
speech present      >= 40 % of 30 ms frames within 30 dB of the loudest frames (an energy VAD),
                    and >= 1.5 s of such frames: music beds and long silences fail here
==================  ==========================================================================

A single speaker is assumed (the API asks for one; the encoder averages over the clip).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from voxmesh.audio.resample import resample
from voxmesh.errors import InvalidRequest, PayloadTooLarge

__all__ = ["ClipReport", "Limits", "decode_clip", "validate_clip"]

ENCODER_RATE = 16000
_FORMATS = {"wav", "mp3", "flac", "ogg"}


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 10 * 1024 * 1024
    min_s: float = 3.0
    max_s: float = 30.0
    min_rate: int = 16000
    max_clipped: float = 0.01
    min_rms_dbfs: float = -45.0
    min_voiced_fraction: float = 0.4
    min_voiced_s: float = 1.5


@dataclass(frozen=True)
class ClipReport:
    duration_s: float
    sample_rate: int
    clipped_fraction: float
    rms_dbfs: float
    voiced_fraction: float
    format: str

    def as_dict(self) -> dict[str, float | int | str]:
        return {"duration_s": round(self.duration_s, 3), "sample_rate": self.sample_rate,
                "clipped_fraction": round(self.clipped_fraction, 5), "rms_dbfs": round(self.rms_dbfs, 1),
                "voiced_fraction": round(self.voiced_fraction, 3), "format": self.format}


def decode_clip(data: bytes, limits: Limits = Limits()) -> tuple[npt.NDArray[np.float32], int, str]:
    """Mono float32 PCM, its sample rate and the container format; 4xx on anything else."""
    import av

    if len(data) > limits.max_bytes:
        raise PayloadTooLarge(f"audio file is {len(data)} bytes; the limit is {limits.max_bytes}", param="file")
    if not data:
        raise InvalidRequest("audio file is empty", param="file")
    try:
        container = av.open(io.BytesIO(data), mode="r", metadata_errors="ignore")
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise InvalidRequest(f"audio file cannot be decoded ({exc}); send wav, mp3, flac or ogg", param="file") from exc
    try:
        fmt_names = set(container.format.name.split(","))
        fmt = next(iter(sorted(fmt_names & _FORMATS)), "")
        if not fmt:
            raise InvalidRequest(f"audio format {container.format.name!r} is not accepted; send wav, mp3, flac or ogg",
                                 param="file")
        streams = container.streams.audio
        if len(streams) != 1:
            raise InvalidRequest(f"audio file must have exactly one audio stream, it has {len(streams)}", param="file")
        stream = streams[0]
        rate = int(stream.codec_context.sample_rate or 0)
        if rate <= 0:
            raise InvalidRequest("audio file has no sample rate", param="file")
        max_samples = int((limits.max_s + 1.0) * rate)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        pieces: list[npt.NDArray[np.float32]] = []
        total = 0
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                arr = out.to_ndarray().reshape(-1).astype(np.float32)
                pieces.append(arr)
                total += arr.size
            if total > max_samples:
                break  # long enough to refuse; decode no further
    except InvalidRequest:
        raise
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise InvalidRequest(f"audio file cannot be decoded ({exc}); send wav, mp3, flac or ogg", param="file") from exc
    finally:
        container.close()
    pcm = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
    return pcm, rate, fmt


def _frames_db(pcm: npt.NDArray[np.float32], rate: int) -> npt.NDArray[np.float64]:
    n = max(1, int(0.03 * rate))
    usable = pcm[: pcm.size // n * n].reshape(-1, n).astype(np.float64)
    out: npt.NDArray[np.float64] = 10.0 * np.log10(np.mean(usable**2, axis=1) + 1e-12)
    return out


def validate_clip(data: bytes, limits: Limits = Limits()) -> tuple[npt.NDArray[np.float32], ClipReport]:
    """Decode and check ``data``; returns the clip at 16 kHz and what was measured."""
    pcm, rate, fmt = decode_clip(data, limits)
    duration = pcm.size / rate
    if rate < limits.min_rate:
        raise InvalidRequest(f"sample rate {rate} Hz is too low: record at {limits.min_rate} Hz or more", param="file")
    if duration < limits.min_s:
        raise InvalidRequest(f"clip is {duration:.1f} s of audio; give {limits.min_s:.0f}-{limits.max_s:.0f} s of speech",
                             param="file")
    if duration > limits.max_s:
        raise InvalidRequest(f"clip is longer than {limits.max_s:.0f} s; trim it to {limits.min_s:.0f}-"
                             f"{limits.max_s:.0f} s of speech", param="file")
    clipped = float(np.mean(np.abs(pcm) >= 0.999))
    if clipped >= limits.max_clipped:
        raise InvalidRequest(f"{clipped:.1%} of the samples are clipped: record again with lower input gain",
                             param="file")
    rms_db = float(10.0 * np.log10(np.mean(pcm.astype(np.float64) ** 2) + 1e-12))
    if rms_db < limits.min_rms_dbfs:
        raise InvalidRequest(f"clip is near silent ({rms_db:.0f} dBFS): record closer to the microphone",
                             param="file")
    frames = _frames_db(pcm, rate)
    loud = float(np.percentile(frames, 95))
    voiced = frames > loud - 30.0
    voiced_fraction = float(np.mean(voiced))
    if voiced_fraction < limits.min_voiced_fraction or voiced.sum() * 0.03 < limits.min_voiced_s:
        raise InvalidRequest(f"too little speech in the clip ({voiced_fraction:.0%} of it): send a clip where "
                             "one person speaks most of the time", param="file")
    spread = float(np.std(frames[voiced])) if voiced.any() else 0.0
    if spread < 1.0:
        raise InvalidRequest("the clip has a constant level, not speech (a tone or noise?): send recorded speech",
                             param="file")
    report = ClipReport(duration, rate, clipped, rms_db, voiced_fraction, fmt)
    return resample(pcm, rate, ENCODER_RATE), report
