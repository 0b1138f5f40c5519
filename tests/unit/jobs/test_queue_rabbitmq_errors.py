"""A publish while aio-pika's robust connection is reconnecting (the broker restarted) is a
503 with Retry-After (``Overloaded``), not an unhandled 500 (found by benchmarks/chaos.py)."""

from __future__ import annotations

from typing import Any

import pytest
from aiormq.exceptions import ChannelInvalidStateError

from voxmesh.errors import Overloaded
from voxmesh.jobs.queue_rabbitmq import RabbitQueue


class _ClosedExchange:
    async def publish(self, message: Any, routing_key: str) -> None:
        raise ChannelInvalidStateError("<RobustChannel> closed")


class _ClosedChannel:
    default_exchange = _ClosedExchange()

    async def declare_queue(self, *args: Any, **kwargs: Any) -> None:
        raise ChannelInvalidStateError("<RobustChannel> closed")


@pytest.mark.parametrize("delay_s", [0.0, 3.0])
async def test_publish_on_a_reconnecting_channel_is_overloaded(delay_s: float) -> None:
    q = RabbitQueue(db=None, url="amqp://unused/")  # type: ignore[arg-type]
    q._channel = _ClosedChannel()
    with pytest.raises(Overloaded, match="cannot publish") as info:
        await q.publish([1, 2], delay_s=delay_s)
    assert info.value.status == 503 and info.value.retry_after == 5
