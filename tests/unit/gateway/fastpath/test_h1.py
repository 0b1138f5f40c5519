"""The pure wire-format helpers of the fast path."""

from __future__ import annotations

import httptools
import pytest

from voxmesh.gateway.fastpath.h1 import (
    LAST_CHUNK,
    DateHeader,
    Target,
    chunk,
    header_lines,
    request_head,
    response_head,
    status_line,
)


def test_targets_parse_once_with_their_host_line() -> None:
    t = Target("https://10.0.0.5:8443")
    assert (t.tls, t.host, t.port, t.host_line) == (True, "10.0.0.5", 8443, b"Host: 10.0.0.5:8443\r\n")
    assert Target("http://worker").host_line == b"Host: worker\r\n" and Target("http://worker").port == 80
    assert Target("http://[::1]:81").host_line == b"Host: [::1]:81\r\n"
    u = Target("unix:/tmp/x.sock")
    assert (u.path, u.host_line) == ("/tmp/x.sock", b"")
    with pytest.raises(ValueError, match="upstream URL"):
        Target("ftp://x")


def test_request_head_is_parseable_and_framed_by_content_length() -> None:
    head = request_head("POST", "/v1/audio/speech?x=1", Target("http://w:9"), 5, b"Content-Type: a/b\r\n")
    seen: dict[str, object] = {"headers": []}

    class P:
        def on_url(self, url: bytes) -> None:
            seen["url"] = url

        def on_header(self, n: bytes, v: bytes) -> None:
            seen["headers"].append((n, v))  # type: ignore[attr-defined]

        def on_body(self, b: bytes) -> None:
            seen["body"] = b

        def on_message_complete(self) -> None:
            seen["done"] = True

    httptools.HttpRequestParser(P()).feed_data(head + b"hello")
    assert seen["url"] == b"/v1/audio/speech?x=1" and seen["body"] == b"hello" and seen["done"]
    assert seen["headers"] == [(b"Host", b"w:9"), (b"Content-Length", b"5"), (b"Content-Type", b"a/b")]


def test_response_heads_drop_hop_by_hop_and_frame_the_body() -> None:
    lines = header_lines([(b"X-Upstream", b"a"), (b"Transfer-Encoding", b"chunked"), (b"Connection", b"close"),
                          (b"content-length", b"9"), (b"Content-Type", b"audio/wav")])  # fmt: skip
    assert lines == b"X-Upstream: a\r\nContent-Type: audio/wav\r\n"
    fixed = response_head(200, lines, 3, keep_alive=True)
    assert fixed == b"HTTP/1.1 200 OK\r\n" + lines + b"Content-Length: 3\r\n\r\n"
    streamed = response_head(503, b"", None, keep_alive=False, date=b"Date: x\r\n")
    assert streamed == (b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n"
                        b"Connection: close\r\nDate: x\r\n\r\n")  # fmt: skip
    assert status_line(599) == b"HTTP/1.1 599 Unknown\r\n"


def test_chunked_body_round_trips_through_httptools() -> None:
    body: list[bytes] = []

    class P:
        def on_body(self, b: bytes) -> None:
            body.append(b)

    wire = response_head(200, b"", None, keep_alive=True) + chunk(b"a" * 300) + chunk(b"bc") + LAST_CHUNK
    httptools.HttpResponseParser(P()).feed_data(wire)
    assert b"".join(body) == b"a" * 300 + b"bc"


def test_date_line_is_formatted_once_per_second() -> None:
    now = [0.2]
    d = DateHeader(lambda: now[0])
    first = d.line()
    assert first == b"Date: Thu, 01 Jan 1970 00:00:00 GMT\r\n"
    now[0] = 0.9
    assert d.line() is first
    now[0] = 1.0
    assert d.line() == b"Date: Thu, 01 Jan 1970 00:00:01 GMT\r\n"
