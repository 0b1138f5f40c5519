"""A lean HTTP/1.1 server: asyncio Protocol + httptools' request parser, keep-alive.

Each connection parses requests with ``httptools.HttpRequestParser``, buffers the body up to
the limit the application gives for that method and path (:data:`LimitFor`), and hands the
complete :class:`Request` to one handler coroutine together with an :class:`Exchange`, the
connection's :class:`~voxmesh.gateway.fastpath.sink.Sink`. Requests on one connection are
answered in order, one at a time (a pipelining client is served, just not concurrently).

What the server does by itself:

* ``Expect: 100-continue`` is answered with ``100 Continue`` (curl sends it for bodies over
  1 MiB), or with the application's 413 when the declared length is over the limit;
* a body over the limit is discarded as it arrives and the handler sees ``too_large``;
* a request httptools cannot parse gets a JSON 400 and the connection is closed;
* request heads are bounded (:class:`HeadLimits`): more than ``max_headers`` headers, or a
  request line plus headers over ``max_head_bytes``, get 431 (a URL alone over it, 414) and
  the connection is closed; a head not complete within ``head_timeout_s`` of its first byte
  gets 408 and the connection is closed (slowloris), and a connection idle for
  ``idle_timeout_s`` between requests (or before its first) is closed;
* back-pressure: ``Exchange.write`` waits while the socket's write buffer is over its
  high-water mark (``pause_writing``/``resume_writing``), and raises ``ConnectionResetError``
  once the client has gone.

Limits
    No TLS here (terminate it in front, or pass ``ssl=`` to ``loop.create_server``), no HTTP/2,
    no upgrade (WebSocket) requests, bodies are buffered, not streamed to the handler.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httptools

from voxmesh.gateway.fastpath.h1 import HOP_BY_HOP, LAST_CHUNK, DateHeader, chunk, header_lines, response_head

__all__ = ["Exchange", "Handler", "HeadLimits", "LimitFor", "Request", "ServerConnection"]

log = logging.getLogger(__name__)

Headers = list[tuple[bytes, bytes]]
LimitFor = Callable[[str, str], int]  # (method, path) -> the largest body accepted
_OUT_SKIP = HOP_BY_HOP | {b"date", b"server"}  # this server frames and dates its answers itself
_MAX_QUEUED = 8  # requests parsed ahead of the one being answered before reading pauses
_BAD_REQUEST = json.dumps(
    {"error": {"type": "invalid_request_error", "message": "malformed HTTP/1.1 request", "param": None}}
).encode()


@dataclass(frozen=True)
class HeadLimits:
    """Bounds on a request head (``VOXMESH_HARDENING__MAX_HEADER_COUNT`` and friends)."""

    max_headers: int = 100
    max_head_bytes: int = 16 * 1024
    head_timeout_s: float = 10.0
    idle_timeout_s: float = 75.0  # a keep-alive connection between requests (or before its first)


class _HeadRejected(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _error_body(message: str) -> bytes:
    return json.dumps({"error": {"type": "invalid_request_error", "message": message, "param": None}}).encode()


class Request:
    """One parsed request; ``headers`` are byte pairs in arrival order (names as sent)."""

    __slots__ = ("body", "headers", "keep_alive", "method", "peer", "too_large", "url")

    def __init__(self, peer: str) -> None:
        self.peer = peer
        self.method = ""
        self.url = b""
        self.headers: Headers = []
        self.body = b""
        self.keep_alive = True
        self.too_large = False

    @property
    def path(self) -> str:
        return self.url.partition(b"?")[0].decode("latin-1")

    def header(self, name: bytes) -> bytes | None:
        """The first value of header ``name`` (lower case), or None."""
        for n, v in self.headers:
            if len(n) == len(name) and n.lower() == name:
                return v
        return None


Handler = Callable[[Request, "Exchange"], Awaitable[None]]


class Exchange:
    """The answer to one request, written straight to the connection's transport."""

    __slots__ = ("_chunked", "_conn", "_head_only", "bytes_sent", "extra", "headers", "keep_alive", "started",
                 "status")

    def __init__(self, conn: ServerConnection, keep_alive: bool, head_only: bool) -> None:
        self._conn = conn
        self.keep_alive = keep_alive
        self._head_only = head_only
        self._chunked = False
        self.started = False
        self.extra: Headers = []  # added to the answer's head (e.g. CORS, x-ratelimit-*)
        # what was answered, for metering after the handler: status, headers, body bytes
        self.status = 0
        self.headers: Headers = []
        self.bytes_sent = 0

    async def respond(self, status: int, headers: Headers, body: bytes) -> None:
        conn = self._conn
        if conn.closed or self.started:
            return
        self.started = True
        self.status, self.headers, self.bytes_sent = status, headers, len(body)
        head = response_head(status, header_lines(headers + self.extra if self.extra else headers, _OUT_SKIP),
                             len(body), keep_alive=self.keep_alive, date=conn.date.line())  # fmt: skip
        if self._head_only:
            conn.write(head)
        elif len(body) < 16384:
            conn.write(head + body)
        else:
            conn.write(head)
            conn.write(body)
        await conn.drain()

    async def start(self, status: int, headers: Headers, length: int | None) -> None:
        conn = self._conn
        if conn.closed:
            raise ConnectionResetError("the client closed the connection")
        self.started = True
        self.status, self.headers = status, headers
        self._chunked = length is None and not self._head_only
        lines = header_lines(headers + self.extra if self.extra else headers, _OUT_SKIP)
        conn.write(response_head(status, lines, length, keep_alive=self.keep_alive, date=conn.date.line()))

    async def write(self, data: bytes) -> None:
        conn = self._conn
        if conn.closed:
            raise ConnectionResetError("the client closed the connection")
        self.bytes_sent += len(data)
        if not self._head_only:
            conn.write(chunk(data) if self._chunked else data)
            await conn.drain()

    async def end(self) -> None:
        if self._chunked and not self._conn.closed:
            self._conn.write(LAST_CHUNK)

    def abort(self) -> None:
        """Cut the connection: a started stream ends without its terminator (truncated)."""
        self.keep_alive = False
        self._conn.close()


class ServerConnection(asyncio.Protocol):
    """One client connection: parse, queue, answer in order."""

    def __init__(
        self, handler: Handler, limit_for: LimitFor, date: DateHeader, live: set[ServerConnection],
        limits: HeadLimits | None = None,
    ) -> None:
        self.head_limits = limits or HeadLimits()
        self._head_timer: asyncio.TimerHandle | None = None
        self._in_head = False
        self._head_bytes = 0
        self._header_count = 0
        self.handler = handler
        self.limit_for = limit_for
        self.date = date
        self.live = live
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.closed = False
        self.peer = ""
        self._req: Request | None = None
        self._parts: list[bytes] = []
        self._size = 0
        self._limit = 0
        self._queue: deque[Request] = deque()
        self._busy = False
        self._reading_paused = False
        self._drain: asyncio.Future[None] | None = None
        self._write_paused = False

    # ---- transport events -------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.peer = peer[0] if isinstance(peer, tuple) else ""
        self.live.add(self)
        self._arm_head_timer(self.head_limits.idle_timeout_s)

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail_parse()
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, _HeadRejected):
                self._reject(exc.__context__.status, exc.__context__.message)
            else:
                self._fail_parse()
        except httptools.HttpParserError:
            self._fail_parse()

    # ---- head limits ------------------------------------------------------------------
    def _arm_head_timer(self, after_s: float) -> None:
        if self._head_timer is None and not self.closed:
            loop = asyncio.get_running_loop()
            self._head_timer = loop.call_later(after_s, self._head_timeout)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timeout(self) -> None:
        self._head_timer = None
        if self.closed or self._busy or self._queue:
            return
        if self._in_head:
            self._reject(408, f"request head not received within {self.head_limits.head_timeout_s:g} s")
        else:
            self.close()  # idle keep-alive connection: close quietly

    def _reject(self, status: int, message: str) -> None:
        if not self.closed and not self._busy:
            body = _error_body(message)
            head = response_head(status, b"Content-Type: application/json\r\n", len(body), keep_alive=False)
            self.write(head + body)
        self.close()

    def _count_head(self, nbytes: int) -> None:
        self._head_bytes += nbytes
        if self._head_bytes > self.head_limits.max_head_bytes:
            raise _HeadRejected(431, f"request head is over {self.head_limits.max_head_bytes} bytes: send fewer "
                                     "or shorter headers")  # fmt: skip

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        self.closed = True
        self.live.discard(self)
        self._wake_drain()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake_drain()

    def _wake_drain(self) -> None:
        d = self._drain
        if d is not None and not d.done():
            d.set_result(None)

    def _fail_parse(self) -> None:
        if not self.closed and not self._busy:
            head = response_head(
                400, b"Content-Type: application/json\r\n", len(_BAD_REQUEST), keep_alive=False
            )
            self.write(head + _BAD_REQUEST)
        self.close()

    # ---- httptools callbacks ----------------------------------------------------------
    def on_message_begin(self) -> None:
        self._req = Request(self.peer)
        self._parts = []
        self._size = 0
        self._in_head = True
        self._head_bytes = 0
        self._header_count = 0
        self._disarm_head_timer()  # the head gets its whole time from its first byte
        self._arm_head_timer(self.head_limits.head_timeout_s)

    def on_url(self, url: bytes) -> None:
        assert self._req is not None
        self._req.url += url
        if len(self._req.url) > self.head_limits.max_head_bytes:
            raise _HeadRejected(414, f"request URL is over {self.head_limits.max_head_bytes} bytes")
        self._count_head(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self._req is not None
        self._header_count += 1
        if self._header_count > self.head_limits.max_headers:
            raise _HeadRejected(431, f"more than {self.head_limits.max_headers} request headers: send fewer")
        self._count_head(len(name) + len(value) + 4)
        self._req.headers.append((name, value))

    def on_headers_complete(self) -> None:
        req = self._req
        assert req is not None
        self._in_head = False
        self._disarm_head_timer()
        req.method = self.parser.get_method().decode("ascii")
        self._limit = self.limit_for(req.method, req.path)
        declared = req.header(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._limit:
            req.too_large = True
        expect = req.header(b"expect")
        if expect is not None and expect.lower() == b"100-continue" and not req.too_large:
            self.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        req = self._req
        assert req is not None
        if req.too_large:
            return
        self._size += len(body)
        if self._size > self._limit:
            req.too_large = True
            self._parts = []
        else:
            self._parts.append(body)

    def on_message_complete(self) -> None:
        req = self._req
        assert req is not None
        parts = self._parts
        req.body = parts[0] if len(parts) == 1 else b"".join(parts)
        self._parts = []
        req.keep_alive = self.parser.should_keep_alive()
        self._req = None
        self._queue.append(req)
        if len(self._queue) >= _MAX_QUEUED and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()
        if not self._busy:
            self._next()

    # ---- answering --------------------------------------------------------------------
    def _next(self) -> None:
        if not self._queue or self.closed:
            self._busy = False
            self._arm_head_timer(self.head_limits.idle_timeout_s)  # idle between requests: bounded too
            return
        self._busy = True
        req = self._queue.popleft()
        if self._reading_paused and self.transport is not None:
            self._reading_paused = False
            self.transport.resume_reading()
        asyncio.get_running_loop().create_task(self._answer(req))

    async def _answer(self, req: Request) -> None:
        ex = Exchange(self, req.keep_alive, req.method == "HEAD")
        try:
            await self.handler(req, ex)
        except Exception:
            log.exception("unhandled error on %s %s", req.method, req.path)
            if not ex.started:
                body = b'{"error": {"type": "internal_error", "message": "internal error (logged)", "param": null}}'
                await ex.respond(500, [(b"Content-Type", b"application/json")], body)
            ex.keep_alive = False
        if not ex.keep_alive:
            self.close()
        else:
            self._next()

    def write(self, data: bytes) -> None:
        if not self.closed and self.transport is not None:
            self.transport.write(data)

    async def drain(self) -> None:
        if self._write_paused and not self.closed:
            self._drain = asyncio.get_running_loop().create_future()
            await self._drain
            if self.closed:
                raise ConnectionResetError("the client closed the connection")

    def close(self) -> None:
        self._disarm_head_timer()
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.close()
            self.live.discard(self)

    @property
    def idle(self) -> bool:
        return not self._busy and not self._queue
