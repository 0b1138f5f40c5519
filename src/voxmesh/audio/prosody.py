"""Emotion presets as prosody, and the DSP that applies them (pitch shift, time stretch, gain).

Presets (exactly what each one changes)
    ========  ======  ==========  =========  ==============================================
    emotion   rate    pitch       energy     kokoro voice blend (partner, weight)
    ========  ======  ==========  =========  ==============================================
    neutral   x1.00   +0 st       +0 dB      none
    happy     x1.08   +2 st       +2 dB      25 % jf_nezumi (female voices)
    sad       x0.88   -2 st       -4 dB      25 % jf_gongitsune (female voices)
    angry     x1.10   +1 st       +4 dB      25 % jf_tebukuro (female voices)
    calm      x0.92   -1 st       -3 dB      25 % jf_alpha (female voices)
    ========  ======  ==========  =========  ==============================================

    * rate multiplies the request's ``speed``; it reaches the engine as its speed parameter
      (Piper ``length_scale``, Kokoro ``speed``), so it changes durations, not pitch.
    * pitch shifts every frequency by that many semitones without changing duration:
      ``asetrate`` (play the samples 2^(st/12) faster: pitch and tempo up), ``aresample``
      back to the original rate, then ``atempo`` by the inverse factor (WSOLA time stretch)
      to restore the duration, all in one libavfilter graph through PyAV.
    * energy is a gain in dB; where the result would exceed 0.95 full scale, a tanh soft
      limiter keeps the peaks under 1.0 (RMS still rises, peaks do not clip).
    * voice blend (engines with ``voice_blending`` only): the request's voice mix is scaled
      by (1 - weight) and the partner voice added with ``weight``. Only female primaries get
      a partner (the pack has one male voice, and blending across genders changes the
      speaker); when the partner already is the primary voice nothing is blended.

Limits
    The pitch shift is a phase-vocoder-free WSOLA: fine for +-3 semitones on speech, audibly
    "phasey" beyond about an octave. It works on one segment at a time (no state across
    segments): each segment is shifted on its own, which is inaudible at sentence joins.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from voxmesh.engines.base import VoiceMix

__all__ = ["PRESETS", "Prosody", "apply_gain", "apply_prosody", "blend_voice", "pitch_shift", "prosody_for", "time_stretch"]

Pcm = npt.NDArray[np.float32]
_LIMIT = 0.95


@dataclass(frozen=True)
class Prosody:
    rate: float = 1.0
    pitch_semitones: float = 0.0
    gain_db: float = 0.0
    blend_voice: str | None = None
    blend_weight: float = 0.0

    @property
    def is_neutral(self) -> bool:
        return self.pitch_semitones == 0 and self.gain_db == 0


PRESETS: dict[str, Prosody] = {
    "neutral": Prosody(),
    "happy": Prosody(rate=1.08, pitch_semitones=2.0, gain_db=2.0, blend_voice="jf_nezumi", blend_weight=0.25),
    "sad": Prosody(rate=0.88, pitch_semitones=-2.0, gain_db=-4.0, blend_voice="jf_gongitsune", blend_weight=0.25),
    "angry": Prosody(rate=1.10, pitch_semitones=1.0, gain_db=4.0, blend_voice="jf_tebukuro", blend_weight=0.25),
    "calm": Prosody(rate=0.92, pitch_semitones=-1.0, gain_db=-3.0, blend_voice="jf_alpha", blend_weight=0.25),
}


def prosody_for(emotion: str) -> Prosody:
    try:
        return PRESETS[emotion]
    except KeyError:
        raise ValueError(f"unknown emotion {emotion!r}; use one of {', '.join(PRESETS)}") from None


def blend_voice(mix: VoiceMix, prosody: Prosody, female_voices: frozenset[str]) -> VoiceMix:
    """The voice mix with the preset's partner voice blended in (see the table)."""
    partner = prosody.blend_voice
    if not partner or prosody.blend_weight <= 0 or mix.primary not in female_voices:
        return mix
    if partner == mix.primary:
        return mix
    keep = 1.0 - prosody.blend_weight
    parts: dict[str, float] = {}
    total = sum(w for _, w in mix.parts)
    for name, weight in mix.parts:
        parts[name] = parts.get(name, 0.0) + keep * weight / total
    parts[partner] = parts.get(partner, 0.0) + prosody.blend_weight
    return VoiceMix(tuple(parts.items()), mix.offset)


def _filter_graph(pcm: Pcm, sample_rate: int, chain: list[tuple[str, str]]) -> Pcm:
    import av

    graph = av.filter.Graph()
    nodes = [graph.add_abuffer(sample_rate=sample_rate, format="flt", layout="mono")]
    nodes += [graph.add(name, args) for name, args in chain]
    nodes.append(graph.add("aformat", "sample_fmts=flt:channel_layouts=mono"))
    nodes.append(graph.add("abuffersink"))
    for a, b in itertools.pairwise(nodes):
        a.link_to(b)
    graph.configure()
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm, dtype=np.float32).reshape(1, -1),
                                       format="flt", layout="mono")
    frame.sample_rate = sample_rate
    frame.pts = 0
    graph.push(frame)
    graph.push(None)
    out: list[Pcm] = []
    while True:
        try:
            got = graph.pull()
        except (av.error.BlockingIOError, av.error.EOFError):
            break
        out.append(np.asarray(got.to_ndarray(), dtype=np.float32).reshape(-1))
    return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)


def _atempo_chain(tempo: float) -> list[tuple[str, str]]:
    # atempo takes 0.5..100 per instance; chain instances for slower tempos.
    chain: list[tuple[str, str]] = []
    while tempo < 0.5:
        chain.append(("atempo", "0.5"))
        tempo /= 0.5
    chain.append(("atempo", f"{tempo:.6f}"))
    return chain


def _padded(pcm: Pcm, sample_rate: int) -> Pcm:
    # atempo keeps back its last window at end of stream; feed silence past the end so the
    # whole signal comes out, then cut to the exact length.
    pad = np.zeros(int(0.2 * sample_rate), dtype=np.float32)
    return np.concatenate([np.asarray(pcm, dtype=np.float32), pad])


def _fit(x: Pcm, n: int) -> Pcm:
    if x.size >= n:
        return x[:n]
    return np.concatenate([x, np.zeros(n - x.size, dtype=np.float32)])


def pitch_shift(pcm: Pcm, sample_rate: int, semitones: float) -> Pcm:
    """Shift pitch by ``semitones`` keeping the number of samples (duration) unchanged."""
    if semitones == 0 or pcm.size == 0:
        return np.asarray(pcm, dtype=np.float32)
    factor = 2.0 ** (semitones / 12.0)
    chain = [("asetrate", f"r={round(sample_rate * factor)}"), ("aresample", str(sample_rate))]
    chain += _atempo_chain(1.0 / factor)
    return _fit(_filter_graph(_padded(pcm, sample_rate), sample_rate, chain), pcm.size)


def time_stretch(pcm: Pcm, sample_rate: int, tempo: float) -> Pcm:
    """Play ``tempo`` times faster (duration / tempo) without changing pitch."""
    if tempo <= 0:
        raise ValueError("tempo must be > 0")
    if abs(tempo - 1.0) < 1e-6 or pcm.size == 0:
        return np.asarray(pcm, dtype=np.float32)
    out = _filter_graph(_padded(pcm, sample_rate), sample_rate, _atempo_chain(tempo))
    return _fit(out, round(pcm.size / tempo))


def apply_gain(pcm: Pcm, gain_db: float) -> Pcm:
    """Gain in dB with a tanh soft limiter above 0.95 full scale."""
    x = np.asarray(pcm, dtype=np.float32) * np.float32(10.0 ** (gain_db / 20.0))
    over = np.abs(x) > _LIMIT
    if over.any():
        head = 1.0 - _LIMIT
        y = x.copy()
        y[over] = np.sign(x[over]) * (_LIMIT + head * np.tanh((np.abs(x[over]) - _LIMIT) / head))
        x = y
    return x.astype(np.float32)


def apply_prosody(pcm: Pcm, sample_rate: int, prosody: Prosody) -> Pcm:
    """Pitch and energy of a preset (its rate and voice blend are applied before synthesis)."""
    out = pitch_shift(pcm, sample_rate, prosody.pitch_semitones)
    if prosody.gain_db:
        out = apply_gain(out, prosody.gain_db)
    return out

