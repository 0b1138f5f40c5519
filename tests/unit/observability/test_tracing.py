"""The tracing helpers with the SDK's in-memory exporter: parent from ``traceparent``, the
request id as trace id, attempt spans as children, and the header rewrite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("opentelemetry.sdk", reason="the otlp extra (opentelemetry-sdk) is not installed")
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from voxmesh.observability import tracing
from voxmesh.settings import OtlpSettings


@pytest.fixture
def memory() -> Iterator[tuple[tracing.Tracing, InMemorySpanExporter]]:
    tr = tracing.start_tracing(OtlpSettings(endpoint="http://127.0.0.1:9", timeout_s=0.2), "unit")
    assert tr is not None and tr.url == "http://127.0.0.1:9/v1/traces"
    exporter = InMemorySpanExporter()
    tr.provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield tr, exporter
    tracing.stop_tracing()  # nothing listens on :9: the flush gives up after timeout_s
    assert tracing.TRACING is None


def test_traceparent_is_the_parent_and_attempts_are_children(memory) -> None:  # type: ignore[no-untyped-def]
    tr, exporter = memory
    span = tr.server_span("POST /x", traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                          request_id="r-1", attributes={"http.route": "/x"})
    token = tracing.CURRENT.set(span)
    attempt = tr.attempt_span("POST /x", {})
    tracing.CURRENT.reset(token)
    assert tr.traceparent(attempt) == f"00-4bf92f3577b34da6a3ce929d0e0e4736-{attempt.get_span_context().span_id:016x}-01"
    tr.end(attempt, 503)
    tr.end(span, 200, attributes={"voxmesh.tenant": "acme", "voxmesh.model": None})
    done = {s.name + str(s.kind): s for s in exporter.get_finished_spans()}
    server, client = done["POST /xSpanKind.SERVER"], done["POST /xSpanKind.CLIENT"]
    assert f"{server.context.trace_id:032x}" == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert server.parent is not None and server.parent.span_id == 0x00F067AA0BA902B7
    assert client.parent is not None and client.parent.span_id == server.context.span_id
    assert server.attributes["voxmesh.tenant"] == "acme" and "voxmesh.model" not in server.attributes
    assert server.attributes["voxmesh.request_id"] == "r-1" and client.status.status_code.name == "ERROR"


def test_the_request_id_is_the_trace_id_when_it_is_32_hex(memory) -> None:  # type: ignore[no-untyped-def]
    tr, exporter = memory
    rid = "0123456789abcdef0123456789abcdef"
    tr.end(tr.server_span("GET /a", traceparent=None, request_id=rid, attributes={}), 200)
    tr.end(tr.server_span("GET /b", traceparent="garbage", request_id="order-42", attributes={}), 200)
    a, b = exporter.get_finished_spans()
    assert f"{a.context.trace_id:032x}" == rid and a.parent is None
    assert f"{b.context.trace_id:032x}" != rid and b.parent is None


def test_with_traceparent_replaces_the_callers() -> None:
    extra = b"Content-Type: application/json\r\nTraceparent: 00-aa-bb-01\r\nX-Request-Id: r\r\n"
    assert tracing.with_traceparent(extra, "00-cc-dd-01") == (
        b"Content-Type: application/json\r\nX-Request-Id: r\r\ntraceparent: 00-cc-dd-01\r\n")
