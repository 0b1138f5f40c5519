"""The fast server's head limits over real sockets: 431 / 414 for oversized heads, 408 and a
closed connection for a slowloris head, idle keep-alive connections closed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from voxmesh.gateway.fastpath.h1 import DateHeader
from voxmesh.gateway.fastpath.server import Exchange, HeadLimits, Request, ServerConnection

LIMITS = HeadLimits(max_headers=20, max_head_bytes=4096, head_timeout_s=0.5, idle_timeout_s=0.8)


ANSWERED: list[tuple[int, int]] = []


async def _ok(req: Request, ex: Exchange) -> None:
    ex.extra = [(b"X-Extra", b"1")]
    await ex.respond(200, [(b"Content-Type", b"text/plain")], b"hello %d" % len(req.headers))
    ANSWERED.append((ex.status, ex.bytes_sent))  # what metering reads after the handler


@pytest.fixture
async def port() -> AsyncIterator[int]:
    loop = asyncio.get_running_loop()
    live: set[ServerConnection] = set()
    server = await loop.create_server(
        lambda: ServerConnection(_ok, lambda m, p: 1024, DateHeader(), live, LIMITS), "127.0.0.1", 0
    )
    yield int(server.sockets[0].getsockname()[1])
    for c in list(live):
        c.close()
    server.close()
    await server.wait_closed()


async def _exchange(port: int, data: bytes, wait: float = 5.0) -> tuple[bytes, bool]:
    """Send ``data``; read until the server closes (True) or ``wait`` passes (False)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    out = b""
    closed = False
    try:
        async with asyncio.timeout(wait):
            while chunk := await reader.read(65536):
                out += chunk
            closed = True
    except TimeoutError:
        pass
    writer.close()
    return out, closed


def _head(n_headers: int, value_len: int = 10, url: bytes = b"/") -> bytes:
    lines = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * value_len) for i in range(n_headers))
    return b"GET " + url + b" HTTP/1.1\r\nHost: t\r\n" + lines + b"\r\n"


async def test_within_limits_is_served_with_extra_headers(port: int) -> None:
    out, _ = await _exchange(port, _head(18), wait=0.2)
    assert out.startswith(b"HTTP/1.1 200 OK") and b"X-Extra: 1\r\n" in out and out.endswith(b"hello 19")
    assert ANSWERED[-1] == (200, len(b"hello 19"))


async def test_too_many_headers_is_431_and_closed(port: int) -> None:
    out, closed = await _exchange(port, _head(25))
    assert out.startswith(b"HTTP/1.1 431 ") and b"more than 20 request headers" in out and closed


async def test_head_over_byte_limit_is_431(port: int) -> None:
    out, closed = await _exchange(port, _head(2, value_len=5000))
    assert out.startswith(b"HTTP/1.1 431 ") and b"over 4096 bytes" in out and closed


async def test_url_over_limit_is_414(port: int) -> None:
    out, closed = await _exchange(port, _head(0, url=b"/" + b"a" * 5000))
    assert out.startswith(b"HTTP/1.1 414 ") and closed


async def test_slowloris_head_gets_408_and_close(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    t0 = time.monotonic()
    writer.write(b"GET / HTTP/1.1\r\nHost: t\r\n")
    out = b""
    for i in range(30):  # one header every 0.1 s, never ending the head, until the server answers
        try:
            out = await asyncio.wait_for(reader.read(65536), 0.1)
            break
        except TimeoutError:
            writer.write(b"X-Slow-%d: 1\r\n" % i)
    out += await asyncio.wait_for(reader.read(), 5)
    elapsed = time.monotonic() - t0
    writer.close()
    assert out.startswith(b"HTTP/1.1 408 ") and b"Connection: close" in out
    assert 0.4 < elapsed < 1.5


async def test_idle_connection_is_closed_quietly(port: int) -> None:
    t0 = time.monotonic()
    out, closed = await _exchange(port, b"", wait=3)
    assert closed and out == b"" and 0.7 < time.monotonic() - t0 < 1.8


async def test_keep_alive_rearms_the_idle_timer(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for _ in range(3):  # three requests 0.6 s apart: each within the idle limit, past the head limit
        writer.write(_head(1))
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"hello 2"), 2)
        assert head.startswith(b"HTTP/1.1 200")
        await asyncio.sleep(0.6)
    assert await asyncio.wait_for(reader.read(), 2) == b""  # then idle past 0.8 s: closed
    writer.close()
