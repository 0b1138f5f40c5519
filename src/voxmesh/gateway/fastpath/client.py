"""Pooled keep-alive HTTP/1.1 client connections on asyncio Protocols + httptools.

One :class:`ConnectionPool` serves every upstream; per target URL it keeps a LIFO stack of
idle keep-alive connections (the most recently used first: warm caches, and the oldest
age out). :meth:`ConnectionPool.send` writes one request (head + buffered body) and waits
for its *first data*: the whole message when the response announces a Content-Length up to
``small_limit``, otherwise the head plus the first body bytes. Every wait is one timer
(``loop.call_later``) that fails the waiting future; nothing wraps each await in a timeout
context. The rest of a streamed body is read with :meth:`Response.read`.

Errors, so that the caller can classify them (``resilience/classify.py``):

* :class:`ConnectFailed` - nothing was sent: refused, unreachable, TLS handshake refused
  (including the mesh's identity check in ``MeshSSLContext``), or connect timed out;
* :class:`ConnectionBroken` - the connection broke after the request was written, or the
  upstream sent something that is not HTTP;
* ``TimeoutError`` - a wait (first data, next chunk) ran out.

A request that breaks on a *reused* connection before any byte came back is sent again once
on a fresh connection: the upstream closed an idle connection while we wrote (the classic
keep-alive race), so it cannot have seen the request.

Back-pressure: a response buffering more than ``HIGH_WATER`` bytes pauses reading on its
socket until the consumer drains it below ``LOW_WATER``.

Limits
    No request-body streaming (bodies are buffered), no pipelining, no HTTP/2, no proxies.
    Responses to HEAD requests end at their head and their connection is not reused.
    TLS: ``server_hostname`` is the URL's host; the context decides what is verified.
"""

from __future__ import annotations

import asyncio
import ssl as ssl_module
import time
from collections import deque
from collections.abc import Callable

import httptools

from voxmesh.gateway.fastpath.h1 import Target, request_head

__all__ = ["HIGH_WATER", "LOW_WATER", "ConnectFailed", "ConnectionBroken", "ConnectionPool", "Response"]

HIGH_WATER = 256 * 1024
LOW_WATER = 64 * 1024


class ConnectFailed(Exception):
    """The request never left: the connection could not be made."""


class ConnectionBroken(Exception):
    """The connection broke (or spoke garbage) after the request was written."""


def _expire(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_exception(TimeoutError())


class Response:
    """One response on one connection: its head, then body chunks as they arrive."""

    __slots__ = ("_buffered", "_chunks", "_conn", "_error", "_head_only", "_small", "_waiter",
                 "content_length", "eof", "headers", "keep_alive", "received", "status")  # fmt: skip

    def __init__(self, conn: _Connection, small_limit: int, head_only: bool) -> None:
        self._conn = conn
        self._small = small_limit
        self._head_only = head_only
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.content_length: int | None = None
        self.keep_alive = False
        self.eof = False
        self.received = False  # any byte of this response came back
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._error: Exception | None = None
        self._waiter: asyncio.Future[None] | None = None

    # ---- fed by the protocol ----------------------------------------------------------
    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def _on_body(self, data: bytes) -> None:
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > HIGH_WATER:
            self._conn.pause()
        self._wake()

    def _on_fail(self, exc: Exception) -> None:
        if not self.eof and self._error is None:
            self._error = exc
            self._wake()

    # ---- the consumer's side ----------------------------------------------------------
    def _first_ready(self) -> bool:
        if self.eof:
            return True
        if not self.status:
            return False
        if self.content_length is not None and self.content_length <= self._small:
            return False  # wait for the whole (small) message
        return bool(self._chunks)

    async def _wait(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        fut = self._waiter = loop.create_future()
        timer = loop.call_later(timeout, _expire, fut)
        try:
            await fut
        finally:
            timer.cancel()
            self._waiter = None

    def _take(self) -> bytes:
        chunks = self._chunks
        data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self._buffered = 0
        self._conn.resume()
        return data

    async def first(self, timeout: float) -> bytes:
        """Wait (at most ``timeout`` s) for the head and first data; return the data so far."""
        deadline = time.monotonic() + timeout
        while not self._first_ready():
            if self._error is not None:
                raise self._error
            await self._wait(max(0.0, deadline - time.monotonic()))
        return self._take() if self._chunks else b""

    async def read(self, timeout: float) -> bytes:
        """The next body bytes; ``b""`` once the body ended."""
        while not self._chunks:
            if self.eof:
                return b""
            if self._error is not None:
                raise self._error
            await self._wait(timeout)
        return self._take()

    def release(self) -> None:
        """Done with the response: its connection goes back to the pool if it can be reused."""
        conn = self._conn
        if self.eof and self.keep_alive and not self._head_only and conn.response is self:
            conn.response = None
            conn.pool_put(conn)
        else:
            conn.close()

    def close(self) -> None:
        self._conn.close()


class _Connection(asyncio.Protocol):
    """One upstream socket; feeds httptools and routes its callbacks to the current response."""

    def __init__(self, pool_put: Callable[[_Connection], None]) -> None:
        self.pool_put = pool_put
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.response: Response | None = None
        self.closed = False
        self.paused = False
        self.idle_since = 0.0
        self._fields: list[tuple[bytes, bytes]] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        resp = self.response
        if resp is None:  # bytes on an idle connection (e.g. a 408): do not trust it again
            self.close()
            return
        resp.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            resp._on_fail(ConnectionBroken(f"the upstream did not answer valid HTTP/1.1: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.response is not None:
            why = f": {exc}" if exc else ""
            self.response._on_fail(ConnectionBroken(f"the upstream closed the connection{why}"))

    def eof_received(self) -> bool | None:
        return None  # close our side too

    # ---- httptools callbacks ----------------------------------------------------------
    def on_message_begin(self) -> None:
        self._fields = []

    def on_header(self, name: bytes, value: bytes) -> None:
        self._fields.append((name, value))

    def on_headers_complete(self) -> None:
        resp = self.response
        if resp is None:
            return
        resp.headers = self._fields
        for name, value in self._fields:
            if len(name) == 14 and name.lower() == b"content-length":
                resp.content_length = int(value)
        resp.status = self.parser.get_status_code()
        resp.keep_alive = self.parser.should_keep_alive()
        if resp._head_only:
            resp.eof = True
        resp._wake()

    def on_body(self, body: bytes) -> None:
        if self.response is not None and not self.response._head_only:
            self.response._on_body(body)

    def on_message_complete(self) -> None:
        resp = self.response
        if resp is not None:
            resp.keep_alive = resp.keep_alive and self.parser.should_keep_alive()
            resp.eof = True
            resp._wake()

    # ---- flow control and lifecycle ---------------------------------------------------
    def pause(self) -> None:
        if not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self.paused and self.transport is not None and not self.closed:
            self.paused = False
            self.transport.resume_reading()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class _Endpoint:
    __slots__ = ("idle", "target")

    def __init__(self, target: Target) -> None:
        self.target = target
        self.idle: list[_Connection] = []


class ConnectionPool:
    """Keep-alive connections per upstream URL (``http://``, ``https://`` or ``unix:/path``)."""

    def __init__(
        self,
        ssl: ssl_module.SSLContext | None = None,
        *,
        keepalive_s: float = 30.0,
        max_idle: int = 64,
        small_limit: int = 64 * 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ssl = ssl
        self._default_ssl: ssl_module.SSLContext | None = None
        self.keepalive_s = keepalive_s
        self.max_idle = max_idle
        self.small_limit = small_limit
        self._clock = clock
        self._endpoints: dict[str, _Endpoint] = {}
        self.connects = 0  # connections opened so far (for tests and metrics)

    def _endpoint(self, url: str) -> _Endpoint:
        ep = self._endpoints.get(url)
        if ep is None:
            ep = self._endpoints[url] = _Endpoint(Target(url))
        return ep

    def idle_count(self, url: str) -> int:
        ep = self._endpoints.get(url)
        return 0 if ep is None else sum(1 for c in ep.idle if not c.closed)

    def _put(self, ep: _Endpoint, conn: _Connection) -> None:
        if conn.closed or len(ep.idle) >= self.max_idle:
            conn.close()
            return
        conn.idle_since = self._clock()
        ep.idle.append(conn)

    def _take(self, ep: _Endpoint) -> _Connection | None:
        idle = ep.idle
        if not idle:
            return None
        oldest = self._clock() - self.keepalive_s
        while idle and idle[0].idle_since < oldest:  # aged out: the upstream may close it any moment
            idle.pop(0).close()
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn
        return None

    async def _connect(self, ep: _Endpoint, timeout: float) -> _Connection:
        loop = asyncio.get_running_loop()
        t = ep.target

        def factory() -> _Connection:
            return _Connection(lambda c: self._put(ep, c))

        try:
            async with asyncio.timeout(timeout):
                if t.path is not None:
                    _, conn = await loop.create_unix_connection(factory, t.path)
                elif t.tls:
                    ctx = self._ssl or self._system_ssl()
                    _, conn = await loop.create_connection(
                        factory, t.host, t.port, ssl=ctx, server_hostname=t.host
                    )
                else:
                    _, conn = await loop.create_connection(factory, t.host, t.port)
        except TimeoutError as exc:
            raise ConnectFailed(f"connecting to {t.url} timed out after {timeout:.1f} s") from exc
        except (OSError, ssl_module.SSLError) as exc:
            raise ConnectFailed(f"cannot connect to {t.url}: {exc}") from exc
        self.connects += 1
        return conn

    def _system_ssl(self) -> ssl_module.SSLContext:
        if self._default_ssl is None:
            self._default_ssl = ssl_module.create_default_context()
        return self._default_ssl

    async def send(
        self, url: str, method: str, path: str, body: bytes, timeout: float, extra: bytes = b""
    ) -> tuple[Response, bytes]:
        """Send one request; return the response and its first data once they arrived.

        ``timeout`` bounds the connect (if any) and the wait for first data together.
        ``response.eof`` says whether the first data is the whole body.
        """
        ep = self._endpoint(url)
        deadline = self._clock() + timeout
        data = request_head(method, path, ep.target, len(body), extra) + body
        head_only = method == "HEAD"
        for again in (False, True):
            conn = None if again else self._take(ep)
            reused = conn is not None
            if conn is None:
                conn = await self._connect(ep, max(0.0, deadline - self._clock()))
            resp = Response(conn, self.small_limit, head_only)
            conn.response = resp
            assert conn.transport is not None
            conn.transport.write(data)
            try:
                first = await resp.first(max(0.0, deadline - self._clock()))
            except ConnectionBroken:
                conn.close()
                if reused and not resp.received:
                    continue  # the idle connection was closed under us: retry once on a fresh one
                raise
            except BaseException:
                conn.close()
                raise
            return resp, first
        raise AssertionError("unreachable")  # pragma: no cover

    def forget(self, url: str) -> None:
        """Close the idle connections to ``url`` (the endpoint was removed)."""
        ep = self._endpoints.pop(url, None)
        if ep is not None:
            for conn in ep.idle:
                conn.close()

    def close(self) -> None:
        for url in list(self._endpoints):
            self.forget(url)
