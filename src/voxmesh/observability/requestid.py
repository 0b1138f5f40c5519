"""One request id across hops, and log lines that carry it.

The id of a request is, in order: a well-formed ``X-Request-Id`` the client sent (1-128
characters of ``[A-Za-z0-9._:/-]``), else the trace id of a valid W3C ``traceparent``
(``00-<32 hex>-<16 hex>-<2 hex>``, not all zeros), else a new random 32-hex id. The gateway
decides it once, sends it to the worker as ``X-Request-Id`` (and passes ``traceparent`` on),
and echoes it in its answer; the worker echoes it too. A job keeps its submission's id (in its
``options`` JSON): the runners send ``<id>-c<chunk>`` with every chunk request, log under that
id, and the webhook carries ``<id>`` (``job-<job id>`` for a job submitted without one).

:data:`REQUEST_ID` holds the id for the task handling the request; :class:`RequestIdFilter`
puts it on every log record (``-`` outside a request), and :class:`JsonFormatter` writes one
JSON object per line (``log_format: json`` / ``VOXMESH_LOG_FORMAT=json``).

OpenTelemetry export is not built in: ``opentelemetry-api`` alone records nothing and the
SDK/exporter packages are not installed; ``traceparent`` passes through so a mesh or a
collector in front can join the traces.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from contextvars import ContextVar
from typing import Any

__all__ = ["HEADER", "REQUEST_ID", "JsonFormatter", "RequestIdFilter", "configure_logging", "new_id",
           "pick_request_id"]

HEADER = "X-Request-Id"
REQUEST_ID: ContextVar[str | None] = ContextVar("voxmesh_request_id", default=None)

_VALID_ID = re.compile(r"^[A-Za-z0-9._:/-]{1,128}$")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")


def new_id() -> str:
    # 128 random bits as 32 hex digits (a trace id's shape); os.urandom is ~4x cheaper than uuid4
    return os.urandom(16).hex()


def pick_request_id(x_request_id: str | None, traceparent: str | None) -> str:
    """The request's id from its headers, or a new one (rules in the module docstring)."""
    if x_request_id is not None:
        candidate = x_request_id.strip()
        if _VALID_ID.match(candidate):
            return candidate
    if traceparent is not None:
        m = _TRACEPARENT.match(traceparent.strip().lower())
        if m is not None and m.group(1) != "0" * 32 and not traceparent.startswith("ff"):
            return m.group(1)
    return new_id()


class RequestIdFilter(logging.Filter):
    """Adds ``record.request_id`` (the current request's id, or ``-``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get() or "-"
        return True


_STD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "request_id"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, request_id, exception, extras."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or REQUEST_ID.get() or "-",
        }
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        for key, value in vars(record).items():
            if key not in _STD and not key.startswith("_"):
                out[key] = value if isinstance(value, str | int | float | bool | None) else repr(value)
        return json.dumps(out, ensure_ascii=False)


def configure_logging(level: str, fmt: str = "text", stream: Any = None) -> None:
    """Root logging for a voxmesh process: text or JSON lines, each with its request id."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RequestIdFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
