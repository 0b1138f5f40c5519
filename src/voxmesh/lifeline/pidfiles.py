"""The supervisor's side: a record of every child, and the end of an earlier run's leftovers.

``data_dir/run`` holds

* ``supervisor.lock``: ``flock``-ed by the live supervisor (the kernel drops the lock when
  it dies, however it dies) and holding its pid. A second supervisor on the same data dir
  is refused with a one-line reason instead of ending the first one's children.
* ``children/<name>.json``: one per running child, written right after it started:
  ``{"pid", "start_time", "cmdline"}``. ``start_time`` is field 22 of ``/proc/<pid>/stat``
  (clock ticks since boot), so a recycled pid never matches a record.

:meth:`RunDir.reap_leftovers` (called by a starting supervisor that holds the lock) ends a
recorded process only when all of these hold: it is alive, its start time is the recorded
one, its command line is the recorded one, and that command line names this run dir
(``--run-dir DIR``: our own worker invocation for this data dir). Anything else, including
a process with a similar name, is left alone; the stale record is removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from voxmesh.errors import ConfigError

__all__ = ["ProcessRecord", "RunDir", "RunDirBusy", "process_cmdline", "process_start_time"]

log = logging.getLogger(__name__)

RUN_DIR_FLAG = "--run-dir"


class RunDirBusy(ConfigError):
    """Another live supervisor holds this data dir."""


def process_start_time(pid: int) -> int | None:
    """Kernel start time of ``pid`` in clock ticks since boot; None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # the command name (field 2) may hold spaces and parentheses: split after the last ')'
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] == "Z":  # a zombie has ended; only its parent's wait is missing
        return None
    return int(fields[19])  # field 22 overall; fields[0] is field 3


def process_cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0")[:-1]]


@dataclass(frozen=True)
class ProcessRecord:
    name: str
    pid: int
    start_time: int
    cmdline: list[str]

    def alive_and_same(self) -> bool:
        """The process the record was written for is still running (not a recycled pid)."""
        return process_start_time(self.pid) == self.start_time and process_cmdline(self.pid) == self.cmdline


class RunDir:
    """``data_dir/run``: the supervisor lock and the records of its children."""

    def __init__(self, path: Path, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.path = path.resolve()
        self.children = self.path / "children"
        self._lock: IO[str] | None = None
        self._sleep = sleep

    # ---- the lock --------------------------------------------------------------------
    def acquire(self) -> None:
        """Take the supervisor lock, or raise :class:`RunDirBusy` naming the holder."""
        self.children.mkdir(parents=True, exist_ok=True)
        f = (self.path / "supervisor.lock").open("a+")
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "?"
            f.close()
            raise RunDirBusy(
                f"another voxmesh supervisor (pid {holder}) is running on {self.path.parent}: "
                "stop it first or use another --data-dir"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        self._lock = f

    def release(self) -> None:
        if self._lock is not None:
            self._lock.close()  # closing the file drops the flock
            self._lock = None

    # ---- records ---------------------------------------------------------------------
    def owns(self, cmdline: list[str]) -> bool:
        """``cmdline`` is one of ours for this run dir: ``--run-dir <this dir>`` in it."""
        for i, arg in enumerate(cmdline[:-1]):
            if arg == RUN_DIR_FLAG and cmdline[i + 1] == str(self.path):
                return True
        return False

    def record(self, name: str, pid: int) -> ProcessRecord | None:
        """Write the record of child ``pid`` (None if it already ended)."""
        start, cmdline = process_start_time(pid), process_cmdline(pid)
        if start is None or cmdline is None:
            return None
        rec = ProcessRecord(name, pid, start, cmdline)
        self.children.mkdir(parents=True, exist_ok=True)
        tmp = self.children / f".{name}.json.tmp"
        tmp.write_text(json.dumps(asdict(rec)))
        tmp.replace(self.children / f"{name}.json")
        return rec

    def forget(self, name: str, pid: int) -> None:
        """Remove the record of ``name`` if it is still the one for ``pid``."""
        path = self.children / f"{name}.json"
        rec = self._read(path)
        if rec is not None and rec.pid == pid:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def records(self) -> list[ProcessRecord]:
        if not self.children.is_dir():
            return []
        return [r for p in sorted(self.children.glob("*.json")) if (r := self._read(p)) is not None]

    @staticmethod
    def _read(path: Path) -> ProcessRecord | None:
        try:
            data = json.loads(path.read_text())
            return ProcessRecord(str(data["name"]), int(data["pid"]), int(data["start_time"]),
                                 [str(a) for a in data["cmdline"]])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    # ---- leftovers -------------------------------------------------------------------
    def reap_leftovers(self, grace_s: float = 2.0) -> list[ProcessRecord]:
        """End the recorded children of an earlier run that still run; only with the lock held."""
        if self._lock is None:
            raise RuntimeError("acquire() the run dir before reaping leftovers")
        ended: list[ProcessRecord] = []
        for path in sorted(self.children.glob("*.json")):
            rec = self._read(path)
            if rec is not None and rec.alive_and_same() and self.owns(rec.cmdline):
                log.warning("ending leftover %s (pid %d) of an earlier run on %s", rec.name, rec.pid, self.path)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(rec.pid, signal.SIGTERM)
                ended.append(rec)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        deadline = time.monotonic() + grace_s
        while any(r.alive_and_same() for r in ended) and time.monotonic() < deadline:
            self._sleep(0.05)
        for rec in ended:
            if rec.alive_and_same():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(rec.pid, signal.SIGKILL)
        return ended
