"""Joining synthesized segments: trim each segment's edge silence, then add a pause by punctuation.

Engines pad their output differently (Piper leaves ~0.2 s of tail, Kokoro ~0.1 s of head and
tail), so the pipeline trims every segment to its speech (samples above -45 dBFS relative to
the segment's peak, keeping 40 ms either side) and appends a pause chosen by how the segment
ends: 0.30 s after a sentence (. ! ? 。 ！ ？ …), 0.15 s after a clause (, ; : ， 、 ； ：), none
otherwise (a segment cut between words). Both pauses scale with 1 / speed.

Limits: a segment that is all silence comes back empty (nothing above the threshold).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["pause_after", "trim_silence", "with_pause"]

Pcm = npt.NDArray[np.float32]
SENTENCE_PAUSE_S = 0.30
CLAUSE_PAUSE_S = 0.15
_THRESHOLD_DB = -45.0
_KEEP_S = 0.04


def trim_silence(pcm: Pcm, sample_rate: int) -> Pcm:
    x = np.asarray(pcm, dtype=np.float32)
    if x.size == 0:
        return x
    peak = float(np.max(np.abs(x)))
    if peak <= 1e-6:
        return x[:0]
    loud = np.flatnonzero(np.abs(x) > peak * 10 ** (_THRESHOLD_DB / 20))
    keep = int(_KEEP_S * sample_rate)
    return x[max(0, int(loud[0]) - keep) : min(x.size, int(loud[-1]) + keep + 1)]


def pause_after(text: str) -> float:
    tail = text.rstrip().rstrip("\"'”’)]}」』》）")
    if not tail:
        return 0.0
    if tail[-1] in ".!?。！？…":
        return SENTENCE_PAUSE_S
    if tail[-1] in ",;:，、；：—":
        return CLAUSE_PAUSE_S
    return 0.0


def with_pause(pcm: Pcm, sample_rate: int, seconds: float) -> Pcm:
    n = round(seconds * sample_rate)
    if n <= 0:
        return pcm
    return np.concatenate([pcm, np.zeros(n, dtype=np.float32)])
