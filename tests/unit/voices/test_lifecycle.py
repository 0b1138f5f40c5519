from __future__ import annotations

from voxmesh.voices.lifecycle import VoiceEvent, VoiceState, next_state


def test_every_transition() -> None:
    expected = {
        (VoiceState.FITTING, VoiceEvent.FITTED): VoiceState.READY,
        (VoiceState.FITTING, VoiceEvent.FAILED): VoiceState.FAILED,
    }
    for state in VoiceState:
        for event in VoiceEvent:
            assert next_state(state, event) == expected.get((state, event))
