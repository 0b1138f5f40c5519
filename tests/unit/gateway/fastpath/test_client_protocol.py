"""The upstream connection protocol driven with bytes: no sockets (a fake transport)."""

from __future__ import annotations

import asyncio

import pytest

from voxmesh.gateway.fastpath.client import HIGH_WATER, ConnectionBroken, Response, _Connection


class FakeTransport:
    def __init__(self) -> None:
        self.closed = False
        self.paused = False

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def close(self) -> None:
        self.closed = True


def conn_with_response(
    small: int = 64 * 1024,
) -> tuple[_Connection, Response, list[_Connection], FakeTransport]:
    pooled: list[_Connection] = []
    conn = _Connection(pooled.append)
    t = FakeTransport()
    conn.connection_made(t)  # type: ignore[arg-type]
    resp = conn.response = Response(conn, small, head_only=False)
    return conn, resp, pooled, t


async def test_small_body_waits_for_the_whole_message_and_goes_back_to_the_pool() -> None:
    conn, resp, pooled, _ = conn_with_response()
    conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nX-A: 1\r\n\r\n01234")
    waiting = asyncio.ensure_future(resp.first(1.0))
    await asyncio.sleep(0)
    assert not waiting.done()  # a small Content-Length body is awaited whole
    conn.data_received(b"56789")
    assert await waiting == b"0123456789" and resp.eof and resp.status == 200
    assert (b"X-A", b"1") in resp.headers and resp.content_length == 10
    resp.release()
    assert pooled == [conn] and conn.response is None


async def test_stream_gives_first_chunk_then_the_rest_then_eof() -> None:
    conn, resp, pooled, t = conn_with_response()
    conn.data_received(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
    assert await resp.first(1.0) == b"abc" and not resp.eof
    reading = asyncio.ensure_future(resp.read(1.0))
    await asyncio.sleep(0)
    conn.data_received(b"2\r\nde\r\n0\r\n\r\n")
    assert await reading == b"de"
    assert await resp.read(1.0) == b"" and resp.eof
    resp.release()
    assert pooled == [conn] and not t.closed


async def test_back_pressure_pauses_and_resumes_reading() -> None:
    conn, resp, _, t = conn_with_response()
    conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\n" + b"x" * (HIGH_WATER + 1))
    assert t.paused
    assert len(await resp.first(1.0)) == HIGH_WATER + 1 and not t.paused


async def test_timeouts_and_breaks_are_classified() -> None:
    conn, resp, _, t = conn_with_response()
    with pytest.raises(TimeoutError):
        await resp.first(0.01)
    conn.data_received(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n")
    assert await resp.first(1.0) == b"a"
    conn.connection_lost(None)
    with pytest.raises(ConnectionBroken, match="closed the connection"):
        await resp.read(1.0)
    resp.release()
    assert t.closed  # a broken response's connection is never reused


async def test_garbage_and_unsolicited_bytes_close_the_connection() -> None:
    conn, resp, _, t = conn_with_response()
    conn.data_received(b"SPDY nonsense\r\n\r\n")
    with pytest.raises(ConnectionBroken, match="valid HTTP"):
        await resp.first(1.0)
    assert t.closed
    idle = _Connection(lambda c: None)
    t2 = FakeTransport()
    idle.connection_made(t2)  # type: ignore[arg-type]
    idle.data_received(b"HTTP/1.1 408 Request Timeout\r\n\r\n")  # nothing was asked
    assert t2.closed
