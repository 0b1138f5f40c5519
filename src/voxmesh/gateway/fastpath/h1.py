"""HTTP/1.1 message heads as bytes: the pure part of the fast path (no sockets, no asyncio).

Parsing is httptools' (llhttp); this module only *builds* what goes on the wire and says
which headers are hop-by-hop, so the protocol modules stay thin and this part is tested
with plain byte strings.

Limits
    Header values are relayed as received (httptools has already rejected CR/LF in them).
    Reason phrases come from :class:`http.HTTPStatus`; unknown codes get ``"Unknown"``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from email.utils import formatdate
from http import HTTPStatus
from urllib.parse import urlsplit

__all__ = [
    "HOP_BY_HOP",
    "LAST_CHUNK",
    "DateHeader",
    "Target",
    "chunk",
    "header_lines",
    "request_head",
    "response_head",
    "status_line",
]

# RFC 9110 7.6.1 plus the framing headers each side sets itself.
HOP_BY_HOP = frozenset({
    b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te", b"trailer",
    b"transfer-encoding", b"upgrade", b"content-length", b"expect", b"proxy-connection",
})  # fmt: skip
LAST_CHUNK = b"0\r\n\r\n"

_STATUS_LINES: dict[int, bytes] = {}


def status_line(status: int) -> bytes:
    """``HTTP/1.1 200 OK\\r\\n``, cached per code."""
    line = _STATUS_LINES.get(status)
    if line is None:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Unknown"
        line = _STATUS_LINES[status] = f"HTTP/1.1 {status} {phrase}\r\n".encode("latin-1")
    return line


class Target:
    """Where an upstream lives, parsed once: ``http://h:p``, ``https://h:p`` or ``unix:/path``.

    ``host_line`` is the ready ``Host:`` header line for requests to it (empty for a unix
    socket: the caller sends its own).
    """

    __slots__ = ("host", "host_line", "path", "port", "tls", "url")

    def __init__(self, url: str) -> None:
        self.url = url
        self.path: str | None = None
        if url.startswith("unix:"):
            self.path, self.host, self.port, self.tls = url[5:], "localhost", 0, False
            self.host_line = b""  # a relay over a unix socket passes the client's own Host
            return
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"upstream URL must be http://host:port, https://host:port or unix:/path, not {url!r}"
            )
        self.tls = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.tls else 80)
        default = 443 if self.tls else 80
        shown = f"[{self.host}]" if ":" in self.host else self.host
        hostport = shown if self.port == default else f"{shown}:{self.port}"
        self.host_line = f"Host: {hostport}\r\n".encode("ascii")


def request_head(method: str, path: str, target: Target, body_len: int, extra: bytes = b"") -> bytes:
    """The head of a request with a buffered body (``Content-Length``, never chunked).

    ``extra`` is zero or more ready ``Name: value\\r\\n`` lines.
    """
    return (
        f"{method} {path} HTTP/1.1\r\n".encode("latin-1")
        + target.host_line
        + b"Content-Length: %d\r\n" % body_len
        + extra
        + b"\r\n"
    )


def header_lines(headers: Iterable[tuple[bytes, bytes]], skip: frozenset[bytes] = HOP_BY_HOP) -> bytes:
    """``Name: value\\r\\n`` lines of ``headers`` minus those whose lower-cased name is in ``skip``."""
    return b"".join(n + b": " + v + b"\r\n" for n, v in headers if n.lower() not in skip)


def response_head(
    status: int, lines: bytes, length: int | None, *, keep_alive: bool, date: bytes = b""
) -> bytes:
    """A response head: chunked when ``length`` is None; ``lines`` as from :func:`header_lines`."""
    framing = b"Transfer-Encoding: chunked\r\n" if length is None else b"Content-Length: %d\r\n" % length
    conn = b"" if keep_alive else b"Connection: close\r\n"
    return status_line(status) + lines + framing + conn + date + b"\r\n"


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body (never empty: the empty chunk ends the body)."""
    return b"%x\r\n" % len(data) + data + b"\r\n"


class DateHeader:
    """The ``Date:`` line, formatted at most once a second."""

    __slots__ = ("_at", "_clock", "_line")

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._at = -1
        self._line = b""

    def line(self) -> bytes:
        now = int(self._clock())
        if now != self._at:
            self._at = now
            self._line = b"Date: " + formatdate(now, usegmt=True).encode("ascii") + b"\r\n"
        return self._line
