"""The child's side: die with the parent.

``PR_SET_PDEATHSIG`` makes the kernel signal this process when the *thread* that forked it
exits (for our supervisors: the event-loop thread, i.e. the process). It is set in the child
after ``fork``, so a parent that died in between would be missed: :func:`bind_to_parent`
compares ``getppid()`` with the pid the parent passed on the command line right after
setting it, and exits if they differ. A daemon thread then polls ``getppid()`` (cheap: one
syscall every ``interval_s``) and exits the process when it changes, for the cases the
signal does not cover (Linux only delivers it to direct children; a process re-parented
to a subreaper keeps running).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

__all__ = ["ORPHAN_EXIT_CODE", "bind_to_parent", "preexec_parent_death", "set_parent_death_signal"]

PR_SET_PDEATHSIG = 1
ORPHAN_EXIT_CODE = 75  # EX_TEMPFAIL: the parent is gone, nothing to serve for


def set_parent_death_signal(sig: int = signal.SIGKILL) -> bool:
    """Ask the kernel to send ``sig`` when our parent dies. False where not supported."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return int(libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)) == 0


def preexec_parent_death() -> None:
    """For ``preexec_fn``: set the death signal between fork and exec (no race at all).
    Only async-signal-safe work here: one ``prctl`` call through ctypes."""
    set_parent_death_signal(signal.SIGKILL)


def _orphaned(parent_pid: int, reason: str) -> None:
    print(f"voxmesh: parent process {parent_pid} is gone ({reason}): exiting", file=sys.stderr, flush=True)
    os._exit(ORPHAN_EXIT_CODE)


def bind_to_parent(
    parent_pid: int,
    *,
    interval_s: float = 0.2,
    getppid: Callable[[], int] = os.getppid,
    on_orphan: Callable[[int, str], None] = _orphaned,
) -> threading.Thread:
    """Die with ``parent_pid``: death signal, immediate check, then a watching thread."""
    set_parent_death_signal(signal.SIGKILL)
    if getppid() != parent_pid:
        on_orphan(parent_pid, f"our parent is now {getppid()}")

    def watch() -> None:
        while True:
            time.sleep(interval_s)
            now = getppid()
            if now != parent_pid:
                on_orphan(parent_pid, f"our parent is now {now}")
                return

    thread = threading.Thread(target=watch, name="parent-watch", daemon=True)
    thread.start()
    return thread
