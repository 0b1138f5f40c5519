"""Child processes never outlive their supervisor.

Two mechanisms, both needed:

* :mod:`~voxmesh.lifeline.parent`: the child asks the kernel for ``SIGKILL`` when its parent
  dies (``PR_SET_PDEATHSIG``), checks at once that the parent it was started by is still its
  parent (the race between ``fork`` and ``prctl``), and watches its parent pid from a
  daemon thread as a second line (a parent death the signal misses, e.g. a subreaper).
* :mod:`~voxmesh.lifeline.pidfiles`: the supervisor records every child it starts (pid,
  kernel start time, command line) in ``data_dir/run``; a supervisor starting on that data
  dir ends the recorded children of an earlier run that are still alive, checked by that
  identity, never by a process-name match. A lock on the data dir keeps a second
  supervisor from ending the children of a live one.
"""

from __future__ import annotations

from voxmesh.lifeline.parent import bind_to_parent, set_parent_death_signal
from voxmesh.lifeline.pidfiles import (
    ProcessRecord,
    RunDir,
    RunDirBusy,
    process_start_time,
)

__all__ = [
    "ProcessRecord",
    "RunDir",
    "RunDirBusy",
    "bind_to_parent",
    "process_start_time",
    "set_parent_death_signal",
]
