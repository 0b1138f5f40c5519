"""Encode mono float PCM to wav, pcm (s16le), flac, mp3, opus (in ogg) and aac (adts).

A :class:`StreamEncoder` takes PCM piece by piece (one sentence at a time) and returns the
bytes ready to send after each piece, so audio leaves as each sentence is synthesized:

    enc = make_encoder("mp3", 24000, streaming=True)
    for pcm in sentences:
        send(enc.feed(pcm))
    send(enc.close())

Formats
    ======  ==================  ==========================================================
    format  content type        how
    ======  ==================  ==========================================================
    wav     audio/wav           RIFF/WAVE, 16-bit mono. Non-streaming: exact header at
                                close. Streaming: the header goes first with the RIFF and
                                ``data`` sizes set to 0xFFFFFFFF ("unknown length", as
                                ffmpeg and most players read it: play until end of stream);
                                the length is never patched.
    pcm     audio/pcm           raw signed 16-bit little-endian mono, no header
    mp3     audio/mpeg          lameenc (LAME), 64 kbit/s CBR (mono speech)
    flac    audio/flac          PyAV (libavcodec flac) in a native FLAC stream; streaming
                                output has no total-sample count in STREAMINFO (0 =
                                unknown, allowed by the FLAC spec)
    opus    audio/ogg           PyAV libopus 32 kbit/s in Ogg, always 48 kHz (Opus's own
                                rate; decoders report 48000), pages flushed every 100 ms
    aac     audio/aac           PyAV aac (LC) 64 kbit/s in ADTS frames
    ======  ==================  ==========================================================

Limits
    Lossy codecs add encoder delay/padding (AAC ~1024 samples, Opus 312 samples at 48 kHz,
    MP3 ~1100 samples), so decoded durations differ from the input by some tens of ms.
"""

from __future__ import annotations

import io
import struct
from typing import Any

import numpy as np
import numpy.typing as npt

from voxmesh.errors import UnsupportedFormat

__all__ = ["CONTENT_TYPES", "FORMATS", "StreamEncoder", "encode", "make_encoder", "to_s16le"]

FORMATS = ("wav", "pcm", "flac", "mp3", "opus", "aac")
CONTENT_TYPES = {
    "wav": "audio/wav",
    "pcm": "audio/pcm",
    "flac": "audio/flac",
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "aac": "audio/aac",
}
_UNKNOWN = 0xFFFFFFFF


def to_s16le(pcm: npt.NDArray[np.float32]) -> bytes:
    x = np.clip(np.asarray(pcm, dtype=np.float32).reshape(-1), -1.0, 1.0)
    return (x * 32767.0).round().astype("<i2").tobytes()


def _wav_header(sample_rate: int, data_bytes: int | None) -> bytes:
    data = _UNKNOWN if data_bytes is None else data_bytes
    riff = _UNKNOWN if data_bytes is None else 36 + data_bytes
    return (
        b"RIFF" + struct.pack("<I", riff) + b"WAVE"
        + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16)
        + b"data" + struct.pack("<I", data)
    )


class StreamEncoder:
    """``feed(pcm) -> bytes`` per piece, ``close() -> bytes`` once; see the module docstring."""

    content_type: str = "application/octet-stream"

    def __init__(self, fmt: str, sample_rate: int, streaming: bool) -> None:
        self.format = fmt
        self.sample_rate = sample_rate
        self.streaming = streaming
        self.content_type = CONTENT_TYPES[fmt]
        self.samples_in = 0
        self._closed = False

    def feed(self, pcm: npt.NDArray[np.float32]) -> bytes:
        if self._closed:
            raise RuntimeError("encoder already closed")
        pcm = np.asarray(pcm, dtype=np.float32).reshape(-1)
        self.samples_in += pcm.size
        return self._feed(pcm) if pcm.size else b""

    def close(self) -> bytes:
        if self._closed:
            return b""
        self._closed = True
        return self._close()

    def _feed(self, pcm: npt.NDArray[np.float32]) -> bytes:
        raise NotImplementedError

    def _close(self) -> bytes:
        raise NotImplementedError


class _PcmEncoder(StreamEncoder):
    def _feed(self, pcm: npt.NDArray[np.float32]) -> bytes:
        return to_s16le(pcm)

    def _close(self) -> bytes:
        return b""


class _WavEncoder(StreamEncoder):
    def __init__(self, fmt: str, sample_rate: int, streaming: bool) -> None:
        super().__init__(fmt, sample_rate, streaming)
        self._header_sent = False
        self._buffer: list[bytes] = []

    def _feed(self, pcm: npt.NDArray[np.float32]) -> bytes:
        data = to_s16le(pcm)
        if not self.streaming:
            self._buffer.append(data)
            return b""
        if not self._header_sent:
            self._header_sent = True
            return _wav_header(self.sample_rate, None) + data
        return data

    def _close(self) -> bytes:
        if self.streaming:
            return b"" if self._header_sent else _wav_header(self.sample_rate, None)
        body = b"".join(self._buffer)
        return _wav_header(self.sample_rate, len(body)) + body


class _Mp3Encoder(StreamEncoder):
    def __init__(self, fmt: str, sample_rate: int, streaming: bool) -> None:
        super().__init__(fmt, sample_rate, streaming)
        import lameenc

        self._enc: Any = lameenc.Encoder()
        self._enc.set_bit_rate(64)
        self._enc.set_in_sample_rate(sample_rate)
        self._enc.set_channels(1)
        self._enc.set_quality(5)

    def _feed(self, pcm: npt.NDArray[np.float32]) -> bytes:
        return bytes(self._enc.encode(to_s16le(pcm)))

    def _close(self) -> bytes:
        return bytes(self._enc.flush())


class _Sink(io.RawIOBase):
    """A write-only file for the muxer; ``take()`` hands out what was written since last time."""

    def __init__(self, seekable: bool) -> None:
        self._buf = bytearray()
        self._pos = 0
        self._sent = 0
        self._seekable = seekable

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self._seekable

    def write(self, b: Any) -> int:
        data = bytes(b)
        self._buf[self._pos : self._pos + len(data)] = data
        self._pos += len(data)
        return len(data)

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._buf)}[whence]
        self._pos = base + offset
        return self._pos

    def take(self) -> bytes:
        out = bytes(self._buf[self._sent :])
        self._sent = len(self._buf)
        return out


_AV = {  # format -> (container, codec, bit rate, fixed codec rate)
    "flac": ("flac", "flac", 0, None),
    "opus": ("ogg", "libopus", 32000, 48000),
    "aac": ("adts", "aac", 64000, None),
}


class _AvEncoder(StreamEncoder):
    def __init__(self, fmt: str, sample_rate: int, streaming: bool) -> None:
        super().__init__(fmt, sample_rate, streaming)
        import av

        self._av = av
        container, codec, bit_rate, rate = _AV[fmt]
        options = {"flush_packets": "1"}
        if container == "ogg":
            options["page_duration"] = "100000"
        self._sink = _Sink(seekable=not streaming)
        self._container: Any = av.open(self._sink, mode="w", format=container, options=options)
        stream: Any = self._container.add_stream(codec, rate=rate or sample_rate, layout="mono")
        if bit_rate:
            stream.bit_rate = bit_rate
        self._stream: Any = stream

    def _feed(self, pcm: npt.NDArray[np.float32]) -> bytes:
        frame = self._av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = self.sample_rate
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        return self._sink.take() if self.streaming else b""

    def _close(self) -> bytes:
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()
        if self.streaming:
            return self._sink.take()
        self._sink.seek(0, io.SEEK_END)
        return self._sink.take()


_ENCODERS: dict[str, type[StreamEncoder]] = {
    "wav": _WavEncoder,
    "pcm": _PcmEncoder,
    "mp3": _Mp3Encoder,
    "flac": _AvEncoder,
    "opus": _AvEncoder,
    "aac": _AvEncoder,
}


def make_encoder(fmt: str, sample_rate: int, *, streaming: bool) -> StreamEncoder:
    try:
        cls = _ENCODERS[fmt]
    except KeyError:
        raise UnsupportedFormat(
            f"unknown response_format {fmt!r}; use one of {', '.join(FORMATS)}", param="response_format"
        ) from None
    return cls(fmt, sample_rate, streaming)


def encode(pcm: npt.NDArray[np.float32], sample_rate: int, fmt: str) -> bytes:
    """Whole-file encoding (exact headers)."""
    enc = make_encoder(fmt, sample_rate, streaming=False)
    return enc.feed(pcm) + enc.close()
