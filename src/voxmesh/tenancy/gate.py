"""The gateway's side of admission: what a request costs, the 429 answer, metering after.

What the auth guard calls, on either server, once it knows ``principal.tenant``::

    decision = await admit_request(gw.admission, tenant, method, path, body, content_type)
    if not decision.allowed:
        status, headers, body = refusal_parts(decision)       # fast path: ex.respond(...)
        return refusal_response(decision)                      # aiohttp
    ex.extra += rate_headers(decision)                         # fast path: x-ratelimit-* on the answer
    ... answer ...
    await meter_answer(gw.admission, tenant, method, path, cost_of(...), status, headers, nbytes, fmt)

Cost is counted from the body the client sent: ``input`` of a speech request, ``q`` of
LibreTranslate (JSON or form), ``input`` of ``/v1/translations``, the string contents of a
chat request's messages, ``text`` of a JSON job. A body that does not parse costs 0 (the
route answers 400 anyway); a job uploaded as a file costs 0 here: call ``admit`` with the
parsed length after ``parse_upload`` for ``max_job_chars`` and characters per day.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web

from voxmesh.tenancy.admission import Admission
from voxmesh.tenancy.bucket import Decision
from voxmesh.tenancy.limits import RouteKind, route_kind
from voxmesh.tenancy.usage import audio_seconds

__all__ = ["admit_request", "meter_answer", "rate_headers", "refusal_parts", "refusal_response", "request_cost"]

Headers = list[tuple[bytes, bytes]]


def _chars(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        return sum(len(v) for v in value if isinstance(v, str))
    return 0


def request_cost(method: str, path: str, body: bytes, content_type: str) -> int:
    """Characters the request asks to synthesize or translate (0 where none or unparsable)."""
    route = f"{method} {path}"
    kind = route_kind(route)
    if kind is RouteKind.OTHER or not body:
        return 0
    ctype = content_type.partition(";")[0].strip().lower()
    if ctype == "application/x-www-form-urlencoded":
        form = parse_qs(body.decode("utf-8", errors="replace"))
        return sum(len(v) for v in form.get("q", []))
    if ctype != "application/json":
        return 0
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return 0
    if not isinstance(data, dict):
        return 0
    if path == "/translate":
        return _chars(data.get("q"))
    if path == "/v1/chat/completions":
        messages = data.get("messages")
        return sum(_chars(m.get("content")) for m in messages if isinstance(m, dict)) if isinstance(messages, list) else 0
    if kind is RouteKind.JOB:
        return _chars(data.get("text"))
    return _chars(data.get("input"))


async def admit_request(
    admission: Admission, tenant: str, method: str, path: str, body: bytes, content_type: str,
    *, active_jobs: int | None = None,
) -> Decision:
    """:meth:`Admission.admit` with the cost counted from the request."""
    cost = request_cost(method, path, body, content_type)
    return await admission.admit(tenant, f"{method} {path}", cost, active_jobs=active_jobs)


def rate_headers(decision: Decision) -> Headers:
    """The ``x-ratelimit-*`` (and on a refusal ``Retry-After``) headers as byte pairs."""
    return [(k.encode(), v.encode()) for k, v in decision.headers().items()]


def refusal_parts(decision: Decision) -> tuple[int, Headers, bytes]:
    """Status, headers and JSON body of the answer to a refused request."""
    err = decision.error()
    merged = {**err.headers(), **decision.headers()}
    headers = [(b"Content-Type", b"application/json"), *((k.encode(), v.encode()) for k, v in merged.items())]
    return err.status, headers, json.dumps(err.to_dict()).encode()


def refusal_response(decision: Decision) -> web.Response:
    status, headers, body = refusal_parts(decision)
    return web.Response(status=status, body=body, headers={k.decode(): v.decode() for k, v in headers})


async def meter_answer(
    admission: Admission, tenant: str, method: str, path: str, cost: int, status: int,
    headers: Mapping[str, str], body_bytes: int, response_format: str = "mp3",
) -> None:
    """Record a successful answer's usage (characters, audio seconds, jobs) and charge its
    audio seconds to the tenant's monthly bucket."""
    if status >= 300:
        return
    kind = route_kind(f"{method} {path}")
    if kind is RouteKind.SPEECH:
        seconds = audio_seconds(headers, body_bytes, response_format)
        await admission.meter.speech(tenant, cost, seconds)
        if seconds is not None:
            await admission.charge_audio(tenant, seconds)
    elif kind is RouteKind.TRANSLATE:
        await admission.meter.translation(tenant, cost)
    elif kind is RouteKind.JOB:
        await admission.meter.job(tenant, cost)
