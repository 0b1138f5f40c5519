"""OpenAI's voice names on voxmesh engines (a pure module: no I/O).

Code written for OpenAI sends ``voice: "alloy"`` and friends. A deployment maps each name to
one of its own voices (kokoro engine option ``openai_voices``, merged over the default table);
an engine with a single voice (Piper) answers every OpenAI name with that voice.

Default mapping for Kokoro v1.0 (the pack has five voices named after OpenAI's):

    alloy af_alloy    ash am_adam       ballad bm_george   coral af_heart
    echo am_echo      fable bm_fable    nova af_nova       onyx am_onyx
    sage af_sarah     shimmer af_bella  verse am_puck

Without the 54-voice pack those ids do not exist; a name whose mapped voice is missing falls
back to the engine's default voice for the language (documented in the README).
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["KOKORO_OPENAI_VOICES", "OPENAI_VOICES", "map_openai_voice"]

OPENAI_VOICES = ("alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse")

KOKORO_OPENAI_VOICES: dict[str, str] = {
    "alloy": "af_alloy", "ash": "am_adam", "ballad": "bm_george", "coral": "af_heart",
    "echo": "am_echo", "fable": "bm_fable", "nova": "af_nova", "onyx": "am_onyx",
    "sage": "af_sarah", "shimmer": "af_bella", "verse": "am_puck",
}


def map_openai_voice(name: str, valid: list[str], mapping: Mapping[str, str], fallback: str) -> str | None:
    """The engine voice for ``name``, or None when ``name`` is not an OpenAI voice name (or is
    also one of the engine's own ids, which always wins).

    Rules, in order: an engine id is itself; a single-voice engine answers any OpenAI name with
    its voice; the deployment's mapping when it names an existing voice; else ``fallback``."""
    key = name.strip().lower()
    if name in valid or key not in OPENAI_VOICES:
        return None
    if len(valid) == 1:
        return valid[0]
    target = mapping.get(key)
    if target is not None and target in valid:
        return target
    return fallback
