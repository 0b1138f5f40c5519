"""What an enrolled voice id looks like (kept apart so the gateway's hot path imports only this)."""

from __future__ import annotations

import re

__all__ = ["ENROLLED_ID", "is_enrolled_id"]

ENROLLED_ID = re.compile(r"^voice_[0-9a-f]{24}$")


def is_enrolled_id(voice: object) -> bool:
    return isinstance(voice, str) and ENROLLED_ID.match(voice) is not None
