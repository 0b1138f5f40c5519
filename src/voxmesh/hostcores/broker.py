"""A file-backed core broker: every worker on a host leases from one budget.

State lives in one JSON file (under ``voxmesh up``: ``<data_dir>/run/host-cores.json``)
guarded by ``flock``: the leases (ticket, holder pid, deployment, cores) and the waiters
(ticket, holder, deployment, cores wanted, wake address), in ticket (FIFO) order. Every
operation takes the lock, drops the leases and waiters of dead processes (``kill(pid, 0)``:
a crashed worker's cores come back at the next operation of anyone), runs the pure rule
:func:`voxmesh.hostcores.budget.allocate`, writes the file back and wakes the waiters it
granted.

Waiting is cheap and prompt: a waiter binds a Unix datagram socket in the abstract
namespace (no file to clean up; it vanishes with the process) *before* it files its
ticket, then blocks in ``recv``. Whoever grants it cores (the worker returning a lease,
usually) sends it one byte after writing the file, so the grant is seen within a context
switch (the byte is the grant itself: the waiter need not read the file again), and a
waiter burns no CPU meanwhile. The ``recv`` times out on a bounded backoff
(``wake_min_s`` doubling to ``wake_max_s``) and then looks at the file itself: that is
only the safety net for a holder that died without returning its lease (nobody else
operates to reclaim it). The abstract namespace is per network namespace: every worker of
a budget must share one (all of ``voxmesh up`` does; so do a pod's containers). Where there
is no abstract namespace (not Linux) a waiter polls the file (2 ms doubling to ``wake_min_s``).

Counters per deployment (leases granted, waits, the high-water mark of leased cores) are in
the file too (:meth:`CoreBroker.metrics_text`, a consistent host-wide view); each process
also counts its own leases (:meth:`CoreBroker.process_metrics`, which the worker serves on
``/metrics``).
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voxmesh.hostcores.budget import BudgetState, Lease, Share, Waiter, allocate

__all__ = ["CoreBroker", "ProcessCounters", "pid_alive"]

log = logging.getLogger(__name__)
_wake_ids = itertools.count(1)  # per process; with the pid, a unique wake address


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class ProcessCounters:
    """This process's side of the budget, per deployment (guarded by the broker's lock)."""

    held: dict[str, int] = field(default_factory=dict)  # cores leased now
    waits: dict[str, int] = field(default_factory=dict)  # tickets that were not granted at once
    core_seconds: dict[str, float] = field(default_factory=dict)  # integral of cores leased over time
    peak: int = 0  # the host-wide high-water mark of leased cores, as last read from the file


class CoreBroker:
    """One process's handle on the lease file (thread-safe: segments lease from many threads)."""

    def __init__(self, path: Path | str, total: int, shares: Mapping[str, Share] | None = None,
                 alive: Callable[[int], bool] = pid_alive, wake_min_s: float = 0.02,
                 wake_max_s: float = 0.2, wait_timeout_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if total < 1:
            raise ValueError("core budget must be >= 1")
        self.path = Path(path)
        self.total = total
        self.shares = dict(shares or {})
        self.alive = alive
        self.wake_min_s = wake_min_s
        self.wake_max_s = wake_max_s
        self.wait_timeout_s = wait_timeout_s
        self.clock = clock
        self.counters = ProcessCounters()
        self._mu = threading.Lock()
        self._leased_at: dict[int, tuple[str, int, float]] = {}  # ticket -> deployment, cores, since
        self.path.touch(exist_ok=True)

    # ---- the locked file -------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self, blocking: bool = True) -> Iterator[dict[str, Any]]:
        """The state, read under the lock and written back (unless the caller set
        ``data["_discard"]``). Not ``blocking``: ``BlockingIOError`` while someone holds it."""
        with open(self.path, "r+") as f:
            fcntl.flock(f, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
            try:
                text = f.read()
                try:
                    data: dict[str, Any] = json.loads(text) if text.strip() else {}
                except ValueError:  # a writer died mid-write: start over (live leases are forgotten)
                    log.warning("host core lease file %s was unreadable; starting it afresh", self.path)
                    data = {}
                for key, empty in (("leases", []), ("waiters", []), ("waits", {}), ("grants", {})):
                    data.setdefault(key, empty)
                data.setdefault("max_granted", 0)
                data.setdefault("next", 1)
                data["leases"] = [x for x in data["leases"] if self.alive(int(x["holder"]))]
                data["waiters"] = [x for x in data["waiters"] if self.alive(int(x["holder"]))]
                yield data
                if data.pop("_discard", False):
                    return
                f.seek(0)
                f.truncate()
                f.write(json.dumps(data))
                f.flush()
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _allocate(self, data: dict[str, Any]) -> list[tuple[bytes, bytes]]:
        """Grant what the rule grants now; the wake-ups to send: ``(address, message)``, the
        message telling the waiter its grant (``ticket cores high-water``), so it need not
        read the file again."""
        state = BudgetState(
            self.total,
            tuple(Lease(int(x["holder"]), str(x["deployment"]), int(x["cores"]), int(x["ticket"]))
                  for x in data["leases"]),
            tuple(Waiter(int(x["ticket"]), int(x["holder"]), str(x["deployment"]), int(x["want"]),
                         tuple(int(k) for k in x.get("sizes", ())))
                  for x in data["waiters"]),
        )
        _, grants = allocate(state, self.shares)
        granted = [x for x in data["waiters"] if int(x["ticket"]) in grants]
        for w in granted:
            data["waiters"].remove(w)
            data["leases"].append({"ticket": w["ticket"], "holder": w["holder"], "deployment": w["deployment"],
                                   "cores": grants[int(w["ticket"])]})
            data["grants"][w["deployment"]] = data["grants"].get(w["deployment"], 0) + 1
        peak = data["max_granted"] = max(int(data["max_granted"]), sum(int(x["cores"]) for x in data["leases"]))
        return [(bytes.fromhex(w["wake"]), f'{w["ticket"]} {grants[int(w["ticket"])]} {peak}'.encode())
                for w in granted]

    @staticmethod
    def _wake(wake: list[tuple[bytes, bytes]]) -> None:
        wake = [(address, message) for address, message in wake if address]
        if not wake:
            return
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
            for address, message in wake:
                with contextlib.suppress(OSError):  # gone (timed out, died): it looks at the file itself
                    sender.sendto(message, socket.MSG_DONTWAIT, address)

    # ---- leasing ---------------------------------------------------------------------
    @staticmethod
    def _file(data: dict[str, Any], holder: int, deployment: str, want: int, returning: int | None,
              sizes: tuple[int, ...], address: bytes) -> int:
        """Return ``returning`` and file a ticket (in the locked ``data``): the ticket."""
        if returning is not None:
            data["leases"] = [x for x in data["leases"] if int(x["ticket"]) != returning]
        ticket = int(data["next"])
        data["next"] = ticket + 1
        data["waiters"].append({"ticket": ticket, "holder": holder, "deployment": deployment,
                                "want": max(1, want), "sizes": list(sizes), "wake": address.hex()})
        return ticket

    def acquire_now(self, deployment: str, want: int, returning: int | None = None,
                    sizes: tuple[int, ...] = ()) -> tuple[int, int] | None:
        """:meth:`acquire` when it needs no wait, cheap enough for an event loop: the lock
        only if free at once, no wake-up socket. None (and nothing changed, ``returning``
        still held): the lock was busy or the cores are not there; call :meth:`acquire`."""
        try:
            with self._locked(blocking=False) as data:
                ticket = self._file(data, os.getpid(), deployment, want, returning, sizes, b"")
                wake = self._allocate(data)
                cores = self._granted(data, ticket)
                data["_discard"] = not cores
        except BlockingIOError:
            return None
        if not cores:
            return None
        self._wake(wake)
        if returning is not None:
            self._returned(returning)
        return self._took(deployment, ticket, cores, int(data["max_granted"]))

    def acquire(self, deployment: str, want: int, timeout_s: float | None = None,
                returning: int | None = None, sizes: tuple[int, ...] = ()) -> tuple[int, int]:
        """Block until at least one core is leased: ``(ticket, cores)``, ``1 <= cores <= want``.
        ``TimeoutError`` past ``timeout_s`` (default ``wait_timeout_s``; the ticket is withdrawn).

        ``returning``: a lease this caller gives back in the same locked step (a request moving
        to its next segment). Returned and asked for again at once, the cores go where the rule
        says, with no gap in which this deployment looks idle and another one takes them.
        ``sizes``: the only grants the caller can use (its thread classes; must include 1)."""
        want = max(1, want)
        timeout_s = self.wait_timeout_s if timeout_s is None else timeout_s
        holder = os.getpid()
        address = f"\0voxmesh-cores.{holder}.{next(_wake_ids)}".encode()
        deadline = self.clock() + timeout_s
        with contextlib.ExitStack() as stack:
            sock = stack.enter_context(socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM))
            inbox: socket.socket | None = sock
            try:
                sock.bind(address)  # before the ticket: no wake-up can be missed
            except OSError:  # no abstract namespace (not Linux): poll the file instead
                inbox, address = None, b""
            with self._locked() as data:
                ticket = self._file(data, holder, deployment, want, returning, sizes, address)
                wake = self._allocate(data)
                cores = self._granted(data, ticket)
                if not cores:
                    data["waits"][deployment] = data["waits"].get(deployment, 0) + 1
            self._wake([w for w in wake if w[0] != address or not address])
            if returning is not None:
                self._returned(returning)
            if cores:
                return self._took(deployment, ticket, cores, int(data["max_granted"]))
            with self._mu:
                self.counters.waits[deployment] = self.counters.waits.get(deployment, 0) + 1
            pause = self.wake_min_s if inbox is not None else self.wake_min_s / 10
            while True:
                left = deadline - self.clock()
                if inbox is None:
                    time.sleep(max(min(pause, left), 0.0))
                    pause = min(2 * pause, self.wake_min_s)
                else:
                    inbox.settimeout(max(min(pause, left), 0.0001))
                    try:
                        got, cores, peak = (int(x) for x in inbox.recv(64).split())
                        if got == ticket and cores > 0:  # granted by whoever woke us; the file says so too
                            return self._took(deployment, ticket, cores, peak)
                    except (TimeoutError, BlockingIOError, ValueError):
                        pause = min(2 * pause, self.wake_max_s)
                with self._locked() as data:
                    wake = self._allocate(data)  # reclaims the dead's cores (the reason to look)
                    cores = self._granted(data, ticket)
                    expired = not cores and self.clock() >= deadline
                    if expired:
                        data["waiters"] = [x for x in data["waiters"] if int(x["ticket"]) != ticket]
                self._wake(wake)
                if cores:
                    return self._took(deployment, ticket, cores, int(data["max_granted"]))
                if expired:
                    raise TimeoutError(f"no core for {deployment} within {timeout_s} s")

    @staticmethod
    def _granted(data: dict[str, Any], ticket: int) -> int:
        return next((int(x["cores"]) for x in data["leases"] if int(x["ticket"]) == ticket), 0)

    def _took(self, deployment: str, ticket: int, cores: int, peak: int) -> tuple[int, int]:
        with self._mu:
            self.counters.held[deployment] = self.counters.held.get(deployment, 0) + cores
            self.counters.peak = max(self.counters.peak, peak)
            self._leased_at[ticket] = (deployment, cores, self.clock())
        return ticket, cores

    def release(self, ticket: int) -> None:
        """Return a lease; its cores go at once to the waiters the rule picks (woken)."""
        with self._locked() as data:
            data["leases"] = [x for x in data["leases"] if int(x["ticket"]) != ticket]
            wake = self._allocate(data)
        self._wake(wake)
        self._returned(ticket)

    def _returned(self, ticket: int) -> None:
        with self._mu:
            got = self._leased_at.pop(ticket, None)
            if got is not None:
                deployment, cores, since = got
                self.counters.held[deployment] -= cores
                self.counters.core_seconds[deployment] = (self.counters.core_seconds.get(deployment, 0.0)
                                                          + cores * (self.clock() - since))

    # ---- views -----------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """Leases, waiters and counters as they are now (dead holders already reclaimed)."""
        with self._locked() as data:
            wake = self._allocate(data)
            out: dict[str, Any] = json.loads(json.dumps(data))
        self._wake(wake)
        return out

    def process_metrics(self) -> str:
        """This process's leases, in Prometheus text: what a worker adds to its ``/metrics``.
        Summed over a deployment's workers they are the deployment's grants; core-seconds
        include the leases still held, up to now."""
        with self._mu:
            now = self.clock()
            held = dict(self.counters.held)
            core_s = dict(self.counters.core_seconds)
            for deployment, cores, since in self._leased_at.values():
                core_s[deployment] = core_s.get(deployment, 0.0) + cores * (now - since)
            waits, peak = dict(self.counters.waits), self.counters.peak
        deps = sorted(set(held) | set(core_s) | set(waits))
        lines = [
            "# HELP voxmesh_host_cores_granted cores this worker leases now from the host budget",
            "# TYPE voxmesh_host_cores_granted gauge",
            *(f'voxmesh_host_cores_granted{{deployment="{d}"}} {held.get(d, 0)}' for d in deps),
            "# HELP voxmesh_host_core_seconds_total cores leased by this worker times seconds held",
            "# TYPE voxmesh_host_core_seconds_total counter",
            *(f'voxmesh_host_core_seconds_total{{deployment="{d}"}} {core_s.get(d, 0.0):.4f}' for d in deps),
            "# HELP voxmesh_host_core_waits_total times a segment of this worker had to wait for cores",
            "# TYPE voxmesh_host_core_waits_total counter",
            *(f'voxmesh_host_core_waits_total{{deployment="{d}"}} {waits.get(d, 0)}' for d in deps),
            "# HELP voxmesh_host_cores_total the host core budget",
            "# TYPE voxmesh_host_cores_total gauge",
            f"voxmesh_host_cores_total {self.total}",
            "# HELP voxmesh_host_cores_granted_max most cores leased at once on the host (as last seen)",
            "# TYPE voxmesh_host_cores_granted_max gauge",
            f"voxmesh_host_cores_granted_max {peak}",
        ]
        return "\n".join(lines) + "\n"

    def metrics_text(self) -> str:
        """The host-wide view from the lease file (one consistent snapshot)."""
        data = self.snapshot()
        granted: dict[str, int] = {}
        for x in data["leases"]:
            granted[x["deployment"]] = granted.get(x["deployment"], 0) + int(x["cores"])
        deployments = sorted(set(granted) | set(data["waits"]) | set(data["grants"]) | set(self.shares))
        lines = [
            "# HELP voxmesh_host_cores_granted cores leased now from the host budget",
            "# TYPE voxmesh_host_cores_granted gauge",
            *(f'voxmesh_host_cores_granted{{deployment="{d}"}} {granted.get(d, 0)}' for d in deployments),
            "# HELP voxmesh_host_cores_total the host core budget",
            "# TYPE voxmesh_host_cores_total gauge",
            f"voxmesh_host_cores_total {self.total}",
            "# HELP voxmesh_host_cores_granted_max most cores leased at once",
            "# TYPE voxmesh_host_cores_granted_max gauge",
            f"voxmesh_host_cores_granted_max {data['max_granted']}",
            "# HELP voxmesh_host_core_waits_total times a worker had to wait for cores",
            "# TYPE voxmesh_host_core_waits_total counter",
            *(f'voxmesh_host_core_waits_total{{deployment="{d}"}} {data["waits"].get(d, 0)}' for d in deployments),
            "# HELP voxmesh_host_core_leases_total leases granted",
            "# TYPE voxmesh_host_core_leases_total counter",
            *(f'voxmesh_host_core_leases_total{{deployment="{d}"}} {data["grants"].get(d, 0)}' for d in deployments),
        ]
        return "\n".join(lines) + "\n"
