"""RabbitMQ dispatch (aio-pika): a durable queue of chunk ids with manual acks and prefetch.

Messages are persistent and published with publisher confirms. Delays (backoff, or waiting
for another runner's lease to expire) use per-delay "parking" queues ``<name>.delay.<ms>``
with a queue-level TTL that dead-letter back into ``<name>``; delays are rounded up to a
power of two from 250 ms to ~65 s (longer delays hop again), so a long delay never blocks a
short one (the head-of-line problem of per-message TTLs). ``length()`` is the ready count
of the main queue plus the parked messages; unacked (in-progress) messages are not counted.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Sequence
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage
from aiormq.exceptions import ChannelInvalidStateError

from voxmesh.clock import Clock, wall
from voxmesh.errors import Overloaded
from voxmesh.jobs.queue import EMPTY, MessageQueue, Settle, get_with_timeout
from voxmesh.storage.db import JobDB

__all__ = ["RabbitQueue"]

log = logging.getLogger(__name__)
_MIN_DELAY_MS = 250
_MAX_DELAY_MS = 64_000


class RabbitQueue(MessageQueue):
    def __init__(
        self, db: JobDB, url: str, *, name: str = "tts-tasks", prefetch: int = 1, clock: Clock = wall
    ) -> None:
        super().__init__(db, clock=clock)
        self.url = url
        self.name = name
        self.prefetch = prefetch
        self._conn: Any = None
        self._channel: Any = None
        self._queue: Any = None
        self._inbox: asyncio.Queue[Any] = asyncio.Queue()
        self._delay_queues: dict[int, Any] = {}
        self._consuming = False

    async def connect(self) -> RabbitQueue:
        try:
            self._conn = await aio_pika.connect_robust(self.url)
            self._channel = await self._conn.channel(publisher_confirms=True)
            await self._channel.set_qos(prefetch_count=self.prefetch)
            self._queue = await self._channel.declare_queue(self.name, durable=True)
            # declared up front so any process (e.g. the gateway reading length()) sees them all
            ms = _MIN_DELAY_MS
            while ms <= _MAX_DELAY_MS:
                await self._delay_queue(ms)
                ms *= 2
        except (aio_pika.exceptions.AMQPError, OSError) as exc:
            raise Overloaded(f"cannot reach RabbitMQ for queue {self.name!r}: {exc}", retry_after=5) from exc
        return self

    async def _delay_queue(self, ms: int) -> str:
        qname = f"{self.name}.delay.{ms}"
        if ms not in self._delay_queues:
            self._delay_queues[ms] = await self._channel.declare_queue(
                qname,
                durable=True,
                arguments={
                    "x-message-ttl": ms,
                    "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": self.name,
                },
            )
        return qname

    async def publish(self, chunk_ids: Sequence[int], delay_s: float = 0.0) -> None:
        routing = self.name
        try:
            if delay_s > 0:
                want = max(1.0, delay_s * 1000) / _MIN_DELAY_MS
                ms = min(_MAX_DELAY_MS, _MIN_DELAY_MS * 2 ** max(0, math.ceil(math.log2(want))))
                routing = await self._delay_queue(ms)
            for cid in chunk_ids:
                await self._channel.default_exchange.publish(
                    aio_pika.Message(
                        json.dumps({"chunk_id": cid}).encode(),
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        content_type="application/json",
                    ),
                    routing_key=routing,
                )
        except (aio_pika.exceptions.AMQPError, ChannelInvalidStateError, OSError) as exc:
            # ChannelInvalidStateError (a RuntimeError): the robust connection is reconnecting
            # after the broker went away; the caller gets a 503 with Retry-After, never a 500
            raise Overloaded(f"cannot publish to RabbitMQ queue {self.name!r}: {exc}", retry_after=5) from exc

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        await self._inbox.put(message)

    async def _receive(self, timeout: float) -> tuple[int | None, Settle, Settle] | None:
        if not self._consuming:
            await self._queue.consume(self._on_message, no_ack=False)
            self._consuming = True
        message = await get_with_timeout(self._inbox, timeout)
        if message is EMPTY:
            return None
        try:
            chunk_id = int(json.loads(message.body)["chunk_id"])
        except (ValueError, KeyError, TypeError):
            chunk_id = None

        async def ack() -> None:
            await message.ack()

        async def release() -> None:
            await message.nack(requeue=True)  # delivered again, to this runner or another

        return chunk_id, ack, release

    async def length(self) -> int:
        # a fresh channel each time: aio-pika channels answer re-declarations from a cache
        channel = await self._conn.channel()
        try:
            total = 0
            for qname in [self.name, *(f"{self.name}.delay.{ms}" for ms in self._delay_queues)]:
                declared = await channel.declare_queue(qname, passive=True)
                total += int(declared.declaration_result.message_count or 0)
            return total
        finally:
            await channel.close()

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
