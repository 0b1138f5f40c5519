"""The request id on the fast server: a sink that puts ``X-Request-Id`` on the answer.

The hot routes decide the id (:func:`voxmesh.observability.requestid.pick_request_id`), send it
upstream and wrap the client's exchange in :class:`IdSink`, so every answer (relayed from a
worker, or an error the gateway makes itself) carries it exactly once.
"""

from __future__ import annotations

from voxmesh.gateway.fastpath.sink import Headers, Sink

__all__ = ["IdSink"]

_NAME = b"x-request-id"


class IdSink:
    __slots__ = ("_inner", "_pair")

    def __init__(self, inner: Sink, request_id: str) -> None:
        self._inner = inner
        self._pair = (b"X-Request-Id", request_id.encode("latin-1"))

    def _with_id(self, headers: Headers) -> Headers:
        for name, _ in headers:
            if name.lower() == _NAME:
                return headers
        return [*headers, self._pair]

    async def respond(self, status: int, headers: Headers, body: bytes) -> None:
        await self._inner.respond(status, self._with_id(headers), body)

    async def start(self, status: int, headers: Headers, length: int | None) -> None:
        await self._inner.start(status, self._with_id(headers), length)

    async def write(self, data: bytes) -> None:
        await self._inner.write(data)

    async def end(self) -> None:
        await self._inner.end()

    def abort(self) -> None:
        self._inner.abort()
