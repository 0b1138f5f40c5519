"""Background threads that prepare things while the process serves (session creation,
warm-ups, dictionary loading).

:func:`start_background` starts a daemon thread, optionally at the lowest CPU priority
(nice 19 for that thread only, so it takes only CPU nobody waiting needs), and registers a
join at interpreter exit: a thread still inside a native runtime (onnxruntime, OpenJTalk)
when the interpreter tears down crashes the process.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
from collections.abc import Callable

__all__ = ["start_background"]


def start_background(target: Callable[[], None], *, name: str, low_priority: bool,
                     join_at_exit_s: float = 60.0) -> threading.Thread:
    def run() -> None:
        if low_priority:
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        target()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    atexit.register(thread.join, join_at_exit_s)
    return thread
