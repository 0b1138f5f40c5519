"""Optional OpenTelemetry trace export over OTLP/HTTP, off by default.

``otlp.endpoint`` (``VOXMESH_OTLP__ENDPOINT``, e.g. ``http://collector:4318``) turns it on;
unset, :data:`TRACING` stays None, every hook is one None check, and no OpenTelemetry
module is imported (the ``otlp`` extra need not be installed). On:

- each server (the gateway's fast server in ``HotRoutes.__call__``, the aiohttp app and the
  worker in :mod:`voxmesh.api.request_id`) opens one SERVER span per request: route, method,
  status, model, tenant, request id; its parent is the incoming W3C ``traceparent`` when there
  is one, else the trace id is the request id when that is 32 hex digits (the id the gateway
  makes), so a trace and the log lines of one request share one id;
- the data plane opens one CLIENT span per upstream attempt (deployment, endpoint, status or
  error; it ends when the answer's head is in) and sends the worker a ``traceparent`` naming
  that span, so the worker's request span is its child.

Spans leave through a ``BatchSpanProcessor`` (its ``OTEL_BSP_*`` environment applies);
:func:`stop_tracing` flushes and shuts it down.
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from typing import Any

__all__ = ["CURRENT", "TRACING", "Tracing", "start_tracing", "stop_tracing", "with_traceparent"]

TRACING: Tracing | None = None  # the process's exporter; None: tracing is off
CURRENT: ContextVar[Any] = ContextVar("voxmesh_span", default=None)  # this request's server span

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_FORCED_TRACE_ID: ContextVar[int | None] = ContextVar("voxmesh_forced_trace_id", default=None)
UNTRACED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})  # probes and scrapes: no spans


def with_traceparent(extra: bytes, traceparent: str) -> bytes:
    """Ready header lines with any ``traceparent`` replaced by ``traceparent``."""
    kept = b"".join(line + b"\r\n" for line in extra.split(b"\r\n")
                    if line and not line.lower().startswith(b"traceparent:"))
    return kept + b"traceparent: " + traceparent.encode("ascii") + b"\r\n"


class Tracing:
    """A tracer provider exporting to one OTLP/HTTP endpoint (imports the SDK lazily)."""

    def __init__(self, endpoint: str, service_name: str, headers: dict[str, str], timeout_s: float,
                 resource: dict[str, str] | None = None) -> None:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

        class _Ids(RandomIdGenerator):
            def generate_trace_id(self) -> int:
                forced = _FORCED_TRACE_ID.get()
                return forced if forced is not None else super().generate_trace_id()

        url = endpoint.rstrip("/")
        if not url.endswith("/v1/traces"):
            url += "/v1/traces"
        self.url = url
        self._trace = trace
        self.provider = TracerProvider(resource=Resource.create({"service.name": service_name, **(resource or {})}),
                                       id_generator=_Ids())
        self.provider.add_span_processor(BatchSpanProcessor(
            OTLPSpanExporter(endpoint=url, headers=dict(headers), timeout=timeout_s)))
        self.tracer = self.provider.get_tracer("voxmesh")

    def server_span(self, name: str, *, traceparent: str | None, request_id: str, attributes: dict[str, Any]) -> Any:
        """Start a request's SERVER span; the caller makes it :data:`CURRENT` and ends it."""
        trace = self._trace
        context = None
        forced = None
        m = None if traceparent is None else _TRACEPARENT.match(traceparent.strip().lower())
        if m is not None and m.group(1) != "0" * 32 and m.group(2) != "0" * 16:
            parent = trace.SpanContext(int(m.group(1), 16), int(m.group(2), 16), is_remote=True,
                                       trace_flags=trace.TraceFlags(int(m.group(3), 16) & 1))
            context = trace.set_span_in_context(trace.NonRecordingSpan(parent))
        elif _HEX32.match(request_id) and request_id != "0" * 32:
            forced = _FORCED_TRACE_ID.set(int(request_id, 16))
        try:
            return self.tracer.start_span(name, context=context, kind=trace.SpanKind.SERVER,
                                          attributes={"voxmesh.request_id": request_id, **attributes})
        finally:
            if forced is not None:
                _FORCED_TRACE_ID.reset(forced)

    def attempt_span(self, name: str, attributes: dict[str, Any]) -> Any:
        """Start a CLIENT span, a child of the current request's span (a root one outside a request)."""
        trace = self._trace
        parent = CURRENT.get()
        context = None if parent is None else trace.set_span_in_context(parent)
        return self.tracer.start_span(name, context=context, kind=trace.SpanKind.CLIENT, attributes=attributes)

    @staticmethod
    def traceparent(span: Any) -> str:
        ctx = span.get_span_context()
        return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"

    def end(self, span: Any, status: int | None, error: BaseException | None = None,
            attributes: dict[str, Any] | None = None) -> None:
        """End ``span`` with an HTTP status (or the error that stopped it)."""
        trace = self._trace
        if attributes:
            span.set_attributes({k: v for k, v in attributes.items() if v is not None})
        if status is not None:
            span.set_attribute("http.response.status_code", status)
        if error is not None:
            span.record_exception(error)
            span.set_status(trace.Status(trace.StatusCode.ERROR, f"{type(error).__name__}: {error}"))
        elif status is not None and status >= 500:
            span.set_status(trace.Status(trace.StatusCode.ERROR))
        span.end()

    def close(self) -> None:
        self.provider.shutdown()  # flushes what the batch processor still holds


def start_tracing(otlp: Any, default_service: str, resource: dict[str, str] | None = None) -> Tracing | None:
    """Start exporting when ``otlp.endpoint`` is set (``otlp``: :class:`voxmesh.settings.OtlpSettings`)."""
    global TRACING
    if otlp.endpoint is None:
        return None
    try:
        tracing = Tracing(otlp.endpoint, otlp.service_name or default_service, otlp.headers, otlp.timeout_s, resource)
    except ImportError as exc:
        from voxmesh.errors import ConfigError

        raise ConfigError(f"otlp.endpoint is set but OpenTelemetry is not installed ({exc.name}): "
                          "pip install 'voxmesh[otlp]', or unset VOXMESH_OTLP__ENDPOINT") from exc
    if TRACING is not None:
        TRACING.close()
    TRACING = tracing
    return tracing


def stop_tracing() -> None:
    """Flush and shut down the exporter (a no-op when tracing is off). It blocks while the
    last batch goes out: from a running event loop, ``await asyncio.to_thread(stop_tracing)``."""
    global TRACING
    tracing, TRACING = TRACING, None
    if tracing is not None:
        tracing.close()
