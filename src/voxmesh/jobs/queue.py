"""Dispatch of chunks to runners: the protocol, the DB backend and the in-memory backend.

Ownership always lives in the metadata DB (a chunk's lease); a queue only says *which chunk
to try next*. So a duplicated, stale or replayed message is harmless: leasing it fails and
the message is dropped (chunk done, dead, or its job no longer active) or re-delayed until
the chunk is due (backoff) or its current lease expires (the owner may have died).

- :class:`DbQueue` (default): no messages at all; ``lease`` polls ``JobDB.lease_next``
  (``SKIP LOCKED`` on PostgreSQL, an atomic UPDATE on SQLite). Backoff is ``next_attempt_at``.
  A lease polls once, then sleeps until its wait ends or a ``publish`` in this process rings
  its doorbell (a submission, or a retry when it comes due): an idle runner does not poll the
  database in between, and the runner itself waits longer the longer it finds nothing
  (:func:`idle_wait`). A runner in *another* process hears no doorbell: it finds new work
  within its idle wait (``jobs.idle_poll_max_s`` at most).
- :class:`MessageQueue` subclasses deliver chunk ids: :class:`MemoryQueue` here (tests) and
  ``RabbitQueue`` in ``queue_rabbitmq``. A message is acked only after the chunk's DB state
  moved on (done, dead, or retried and re-published), so a runner killed mid-chunk leaves
  its message unacked and the broker redelivers it. A runner that *lives on* after a failed
  DB call (a PostgreSQL restart under ``lease_chunk`` or ``complete``) releases the message
  instead (:meth:`Lease.release`: back to the broker, requeued): a message it neither acked
  nor released would stay unacked for as long as its channel lives, and with the default
  prefetch of 1 the broker would send that runner nothing ever again (the chaos soak found
  both runners wedged so after a ``pg-restart``, every job stuck until RabbitMQ restarted).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from voxmesh.clock import Clock, wall
from voxmesh.storage.db import JobDB
from voxmesh.storage.schema import ChunkRow

__all__ = ["EMPTY", "ChunkQueue", "DbQueue", "Doorbell", "Lease", "MemoryQueue", "MessageQueue", "Settle",
           "get_with_timeout", "idle_wait"]

log = logging.getLogger(__name__)


async def _noop() -> None:
    return None


EMPTY: object = object()


async def get_with_timeout(q: asyncio.Queue[Any], timeout: float) -> Any:
    """``q.get()`` with a timeout; ``timeout <= 0`` polls. Returns ``EMPTY`` on timeout."""
    if timeout <= 0:
        try:
            return q.get_nowait()
        except asyncio.QueueEmpty:
            return EMPTY
    try:
        return await asyncio.wait_for(q.get(), timeout)
    except TimeoutError:
        return EMPTY


Settle = Callable[[], Awaitable[None]]


def idle_wait(previous: float, worked: bool, base: float, cap: float) -> float:
    """How long an idle runner waits for its next chunk: ``base`` after work, doubled after
    each wait that found nothing, at most ``cap`` (never below ``base``)."""
    return base if worked else max(base, min(cap, previous * 2))


class Doorbell:
    """Wakes everyone waiting at once: ``ring`` sets the current event and starts a new one,
    so a waiter that took :meth:`current` before checking for work cannot miss a ring."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def current(self) -> asyncio.Event:
        return self._event

    def ring(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()

    def ring_in(self, delay_s: float) -> None:
        if delay_s <= 0:
            self.ring()
        else:
            asyncio.get_running_loop().call_later(delay_s, self.ring)

    @staticmethod
    async def wait(event: asyncio.Event, timeout: float) -> bool:
        """True if ``event`` rang within ``timeout``."""
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            return False
        return True


@dataclass
class Lease:
    """A leased chunk; call :meth:`ack` once its DB state has moved on (done/retried/dead), or
    :meth:`release` when it could not be moved on (the message goes back to the broker).
    A message is settled once: the second call of either is a no-op."""

    chunk: ChunkRow
    _ack: Settle = field(default=_noop, repr=False)
    _release: Settle = field(default=_noop, repr=False)
    settled: bool = field(default=False, repr=False)

    async def ack(self) -> None:
        if not self.settled:
            self.settled = True  # a failed ack is not followed by a release: its channel is gone anyway
            await self._ack()

    async def release(self) -> None:
        """Requeue the message, never raising (the caller is already handling an error)."""
        if not self.settled:
            self.settled = True
            await _release_quietly(self._release)


async def _release_quietly(release: Settle) -> None:
    try:
        await release()
    except Exception:  # the channel broke as well: the broker requeues it when the channel closes
        log.warning("could not give a queue message back; the broker requeues it with its channel", exc_info=True)


class ChunkQueue(Protocol):
    async def publish(self, chunk_ids: Sequence[int], delay_s: float = 0.0) -> None: ...

    async def lease(self, owner: str, lease_s: float, wait_s: float) -> Lease | None: ...

    async def length(self) -> int: ...

    async def close(self) -> None: ...


class DbQueue:
    """The metadata DB is the queue: runners look for leasable chunks when they start to wait
    and whenever this process publishes (module doc)."""

    def __init__(self, db: JobDB, *, clock: Clock = wall) -> None:
        self.db = db
        self.clock = clock
        self.doorbell = Doorbell()

    async def publish(self, chunk_ids: Sequence[int], delay_s: float = 0.0) -> None:
        # the rows are the queue (delays are next_attempt_at): only wake this process's runners
        self.doorbell.ring_in(delay_s)

    async def lease(self, owner: str, lease_s: float, wait_s: float) -> Lease | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while True:
            rang = self.doorbell.current()  # before the query: a publish during it is not missed
            chunk = await self.db.lease_next(owner, self.clock(), lease_s)
            if chunk is not None:
                return Lease(chunk)
            left = deadline - loop.time()
            if left <= 0 or not await Doorbell.wait(rang, left):
                return None

    async def length(self) -> int:
        return await self.db.queue_length(self.clock())

    async def close(self) -> None:
        return None


class MessageQueue:
    """Base for brokers: subclasses implement ``publish``, ``_receive``, ``length``, ``close``."""

    def __init__(self, db: JobDB, *, clock: Clock = wall) -> None:
        self.db = db
        self.clock = clock

    async def publish(self, chunk_ids: Sequence[int], delay_s: float = 0.0) -> None:
        raise NotImplementedError

    async def _receive(self, timeout: float) -> tuple[int | None, Settle, Settle] | None:
        """Next message as ``(chunk_id or None if unreadable, ack, release)``, or None on
        timeout; ``release`` hands the message back to be delivered again."""
        raise NotImplementedError

    async def lease(self, owner: str, lease_s: float, wait_s: float) -> Lease | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while True:
            got = await self._receive(max(0.0, deadline - loop.time()))
            if got is None:
                return None
            chunk_id, ack, release = got
            if chunk_id is None:
                log.warning("dropping an unreadable queue message")
                await ack()
                continue
            now = self.clock()
            try:
                outcome = await self.db.lease_chunk(chunk_id, owner, now, lease_s)
                if outcome.chunk is not None:
                    return Lease(outcome.chunk, ack, release)
                if outcome.retry_at is not None:  # not due yet, or someone holds it: look again later
                    await self.publish([chunk_id], delay_s=max(0.05, outcome.retry_at - now))
            except BaseException:  # the DB (or the re-publish) failed: the message must not stay in hand
                await _release_quietly(release)
                raise
            await ack()  # dropped or re-delayed; look at the next message (waiting ends at the deadline)


class MemoryQueue(MessageQueue):
    """In-process broker for unit tests: delays via ``call_later``; nothing survives a crash."""

    def __init__(self, db: JobDB, *, clock: Clock = wall) -> None:
        super().__init__(db, clock=clock)
        self._q: asyncio.Queue[int | None] = asyncio.Queue()
        self._timers: set[asyncio.TimerHandle] = set()
        self.published = 0

    async def publish(self, chunk_ids: Sequence[int], delay_s: float = 0.0) -> None:
        for cid in chunk_ids:
            self.published += 1
            if delay_s <= 0:
                self._q.put_nowait(cid)
            else:
                handle = asyncio.get_running_loop().call_later(delay_s, self._q.put_nowait, cid)
                self._timers.add(handle)

    def put_raw(self, item: int | None) -> None:
        """Inject a message as-is (tests: an unreadable message is ``None``)."""
        self._q.put_nowait(item)

    async def _receive(self, timeout: float) -> tuple[int | None, Settle, Settle] | None:
        item = await get_with_timeout(self._q, timeout)
        if item is EMPTY:
            return None

        async def release() -> None:
            self._q.put_nowait(item)

        return item, _noop, release

    async def length(self) -> int:
        return self._q.qsize()

    async def close(self) -> None:
        for handle in self._timers:
            handle.cancel()
