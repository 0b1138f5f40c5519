"""Where the data plane writes an answer: the client side of one exchange, as a small protocol.

:class:`Sink` is what :meth:`voxmesh.gateway.dataplane.DataPlane.exchange` needs from a
server: either one whole response (``respond``), or a head (``start``) followed by chunks
(``write``) and an end (``end``), or ``abort`` to cut a started stream so the client sees it
truncated. ``write`` raises ``ConnectionError`` once the client is gone.

Two implementations: :class:`AiohttpSink` (an aiohttp handler's response, used by
``DataPlane.forward``) and the fast server's own (``fastpath/server.py``). Headers are
``(name, value)`` byte pairs as httptools gives them, hop-by-hop ones included: each sink
drops those (and whatever its server sets itself).
"""

from __future__ import annotations

import json
from typing import Protocol

from aiohttp import web
from multidict import CIMultiDict

from voxmesh.errors import VoxmeshError

__all__ = ["AiohttpSink", "Sink", "error_parts"]

Headers = list[tuple[bytes, bytes]]

# Hop-by-hop headers (RFC 9110 7.6.1) and those aiohttp's server side sets itself.
_SKIP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade", "content-length", "date", "server",
})  # fmt: skip


def error_parts(err: VoxmeshError) -> tuple[Headers, bytes]:
    """Headers and JSON body of an error answer, exactly as ``voxmesh.api.errors`` writes them."""
    headers = [
        (b"Content-Type", b"application/json"),
        *((k.encode(), v.encode()) for k, v in err.headers().items()),
    ]
    return headers, json.dumps(err.to_dict()).encode()


class Sink(Protocol):
    async def respond(self, status: int, headers: Headers, body: bytes) -> None: ...

    async def start(self, status: int, headers: Headers, length: int | None) -> None: ...

    async def write(self, data: bytes) -> None: ...

    async def end(self) -> None: ...

    def abort(self) -> None: ...


class AiohttpSink:
    """Builds the ``web.StreamResponse`` an aiohttp handler returns."""

    __slots__ = ("_out", "request", "response")

    def __init__(self, request: web.Request) -> None:
        self.request = request
        self.response: web.StreamResponse | None = None
        self._out: web.StreamResponse | None = None

    @staticmethod
    def _headers(headers: Headers) -> CIMultiDict[str]:
        out: CIMultiDict[str] = CIMultiDict()
        for n, v in headers:
            name = n.decode("latin-1")
            if name.lower() not in _SKIP:
                out.add(name, v.decode("latin-1"))
        return out

    async def respond(self, status: int, headers: Headers, body: bytes) -> None:
        self.response = web.Response(status=status, headers=self._headers(headers), body=body)

    async def start(self, status: int, headers: Headers, length: int | None) -> None:
        out = self.response = self._out = web.StreamResponse(status=status, headers=self._headers(headers))
        if length is not None:
            out.content_length = length
        await out.prepare(self.request)

    async def write(self, data: bytes) -> None:
        assert self._out is not None
        await self._out.write(data)

    async def end(self) -> None:
        assert self._out is not None
        await self._out.write_eof()

    def abort(self) -> None:
        if self.request.transport is not None:
            self.request.transport.close()  # the client must see a truncated stream, not an end
