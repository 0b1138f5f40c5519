from __future__ import annotations

import json
import logging

from hypothesis import given
from hypothesis import strategies as st

from voxmesh.gateway.fastpath.request_id import IdSink
from voxmesh.observability.requestid import REQUEST_ID, JsonFormatter, RequestIdFilter, pick_request_id

TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_pick_prefers_a_valid_header_then_traceparent_then_a_new_id() -> None:
    assert pick_request_id("abc-1.2:x/y", TRACE) == "abc-1.2:x/y"
    assert pick_request_id(None, TRACE) == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert pick_request_id("has space", TRACE) == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert pick_request_id("x" * 129, None) != "x" * 129
    zero = "00-" + "0" * 32 + "-00f067aa0ba902b7-01"
    for bad in (zero, "garbage", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"):
        made = pick_request_id(None, bad)
        assert len(made) == 32 and made != "4bf92f3577b34da6a3ce929d0e0e4736"
    assert pick_request_id(None, None) != pick_request_id(None, None)


@given(st.text(max_size=200))
def test_any_header_gives_a_safe_id(header: str) -> None:
    rid = pick_request_id(header, header)
    assert 1 <= len(rid) <= 128 and all(c.isascii() and c.isprintable() and c not in ' "\\' for c in rid)


def _record() -> logging.LogRecord:
    return logging.LogRecord("voxmesh.x", logging.INFO, __file__, 1, "hello %s", ("you",), None)


def test_filter_and_json_formatter_carry_the_current_id() -> None:
    rec = _record()
    RequestIdFilter().filter(rec)
    assert rec.request_id == "-"  # type: ignore[attr-defined]
    token = REQUEST_ID.set("r-1")
    try:
        rec = _record()
        rec.deployment = "tts-en"
        RequestIdFilter().filter(rec)
        out = json.loads(JsonFormatter().format(rec))
    finally:
        REQUEST_ID.reset(token)
    assert out["request_id"] == "r-1" and out["message"] == "hello you" and out["deployment"] == "tts-en"
    assert out["level"] == "INFO" and out["logger"] == "voxmesh.x"


class _Sink:
    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    async def respond(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.calls.append(("respond", headers))

    async def start(self, status: int, headers: list[tuple[bytes, bytes]], length: int | None) -> None:
        self.calls.append(("start", headers))

    async def write(self, data: bytes) -> None:
        self.calls.append(("write", data))

    async def end(self) -> None:
        self.calls.append(("end", None))

    def abort(self) -> None:
        self.calls.append(("abort", None))


async def test_id_sink_adds_the_header_once() -> None:
    inner = _Sink()
    sink = IdSink(inner, "r-9")
    await sink.respond(200, [(b"Content-Type", b"audio/wav")], b"")
    await sink.start(200, [(b"x-request-id", b"r-9")], None)
    await sink.write(b"a")
    await sink.end()
    sink.abort()
    assert inner.calls[0] == ("respond", [(b"Content-Type", b"audio/wav"), (b"X-Request-Id", b"r-9")])
    assert inner.calls[1] == ("start", [(b"x-request-id", b"r-9")])
    assert [c[0] for c in inner.calls[2:]] == ["write", "end", "abort"]
