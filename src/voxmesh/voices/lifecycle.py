"""Lifecycle of an enrolled voice, as a transition table.

Rules:
    * a voice is created FITTING once its clip passed validation and is stored;
    * FITTING -> READY when the fit finished and its style is stored;
    * FITTING -> FAILED when the fit raised (the error is kept; the voice can be deleted);
    * READY and FAILED are final; a deleted voice has no row (no state).
Only READY voices can be spoken with; a FITTING voice answers 409 in the speech API.
"""

from __future__ import annotations

from enum import Enum

__all__ = ["VoiceEvent", "VoiceState", "next_state"]


class VoiceState(Enum):
    FITTING = "fitting"
    READY = "ready"
    FAILED = "failed"


class VoiceEvent(Enum):
    FITTED = "fitted"
    FAILED = "failed"


_TABLE: dict[tuple[VoiceState, VoiceEvent], VoiceState] = {
    (VoiceState.FITTING, VoiceEvent.FITTED): VoiceState.READY,
    (VoiceState.FITTING, VoiceEvent.FAILED): VoiceState.FAILED,
}


def next_state(state: VoiceState, event: VoiceEvent) -> VoiceState | None:
    """The state after ``event``, or None when the event does not apply in ``state``."""
    return _TABLE.get((state, event))
