"""One request's seat in the host core budget (voxmesh.hostcores): a lease carried from
segment to segment.

Before each segment the request asks the budget for the threads its own scheduler granted;
the lease of its previous segment is handed back in the same step
(``CoreBroker.acquire(returning=...)``), and the last one when the request ends. Between
two segments (encoding, the event loop) the request keeps its cores, so a deployment whose
segments are short does not look idle between them and lose its share to a neighbour. A
lease not renewed within ``grace_s`` of its segment's end (a streamed answer waiting on a
slow client) goes back on its own, so a stalled request never sits on cores. Without a
budget (``broker`` None) the seat grants what is asked.
"""

from __future__ import annotations

import asyncio

from voxmesh.errors import Overloaded
from voxmesh.hostcores.broker import CoreBroker

__all__ = ["HostSeat"]


class HostSeat:
    def __init__(self, broker: CoreBroker | None, deployment: str, sizes: tuple[int, ...] = (),
                 grace_s: float = 0.05) -> None:
        self.broker = broker
        self.sizes = sizes  # the worker's thread classes: a grant is always one of them
        self.deployment = deployment
        self.grace_s = grace_s
        self.ticket: int | None = None
        self._expiry: asyncio.TimerHandle | None = None

    async def lease(self, loop: asyncio.AbstractEventLoop, want: int) -> int:
        """Cores for the next segment, ``1..want``; waits (off the loop) while the budget is
        spent. A request cancelled while waiting gives the lease back as soon as it comes."""
        broker = self.broker
        if broker is None:
            return want
        self._cancel_expiry()
        now = broker.acquire_now(self.deployment, want, self.ticket, self.sizes)  # on the loop: no wait
        if now is not None:
            self.ticket = now[0]
            return now[1]
        returning, self.ticket = self.ticket, None
        fut = loop.run_in_executor(None, broker.acquire, self.deployment, want, None, returning, self.sizes)

        def give_back(f: asyncio.Future[tuple[int, int]]) -> None:
            if not f.cancelled() and f.exception() is None:
                broker.release(f.result()[0])

        try:
            self.ticket, cores = await asyncio.shield(fut)
        except asyncio.CancelledError:
            fut.add_done_callback(give_back)
            raise
        except TimeoutError as exc:
            raise Overloaded(f"no host core free for {self.deployment} within {broker.wait_timeout_s:g} s",
                             retry_after=1.0) from exc
        return cores

    def segment_done(self, loop: asyncio.AbstractEventLoop) -> None:
        """The segment ran: keep the lease for the next one, but only ``grace_s`` long."""
        if self.broker is not None and self.ticket is not None:
            self._cancel_expiry()
            self._expiry = loop.call_later(self.grace_s, self.close)

    def _cancel_expiry(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None

    async def __aenter__(self) -> HostSeat:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """The request is done: its cores go back to the budget (and to whoever waits)."""
        self._cancel_expiry()
        if self.broker is not None and self.ticket is not None:
            ticket, self.ticket = self.ticket, None
            self.broker.release(ticket)
