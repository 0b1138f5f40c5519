"""The fast server's routes: the hot API routes validated here, everything else relayed.

Hot routes (the ones that carry traffic to models), validated exactly as
``voxmesh.gateway.app.Gateway`` validates them and then sent through
:meth:`DataPlane.exchange`:

=======  ======================  ==================================================
POST     /v1/audio/speech        ``parse_body`` + ``SpeechRequest``; model resolved by
                                 the catalog and must be a TTS model
POST     /translate, /detect,    model from a JSON body's ``model`` (must be mt/chat),
         /v1/translations        else the first ``mt`` deployment; path and query kept
GET      /languages              the first ``mt`` deployment
=======  ======================  ==================================================

Every hot route passes the gateway's guard first (``voxmesh.auth.guard``, the same rules as the
app's middleware); relayed requests are checked by the app, never twice and never by trusting a
header. Errors are the ``voxmesh.errors`` JSON bodies with their statuses and headers (413 for a
body over 2 MiB, as aiohttp's ``client_max_size`` answers). Every other method and path
goes, unchanged, to the aiohttp app through :class:`Relay`: jobs, admin, models, voices,
metrics, health, and the 404/405 answers.

Model resolution, the MT target rule and the caller label are the gateway's own
(``Catalog.resolve``, ``Catalog.mt_target``, ``caller_label``), so both servers answer alike;
tests/integration/test_fastpath.py compares their answers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from voxmesh.api.schemas import SpeechRequest, parse_body
from voxmesh.auth.guard import ON_BEHALF_HEADER, Call, Guard, api_key_from_body
from voxmesh.auth.scopes import scope_for
from voxmesh.errors import InvalidRequest, UpstreamError, VoxmeshError
from voxmesh.gateway.app import caller_label
from voxmesh.gateway.cors import CorsPolicy
from voxmesh.gateway.fastpath.client import ConnectFailed, ConnectionBroken, ConnectionPool
from voxmesh.gateway.fastpath.h1 import HOP_BY_HOP, header_lines
from voxmesh.gateway.fastpath.request_id import IdSink
from voxmesh.gateway.fastpath.server import Exchange, Request
from voxmesh.gateway.fastpath.sink import Sink, error_parts
from voxmesh.observability import tracing
from voxmesh.observability.requestid import REQUEST_ID, pick_request_id
from voxmesh.voices.ids import is_enrolled_id

if TYPE_CHECKING:
    from voxmesh.gateway.app import Catalog
    from voxmesh.gateway.dataplane import DataPlane

__all__ = ["HOT_BODY_LIMIT", "PEER_HEADER", "HeaderSink", "HotRoutes", "Relay"]

log = logging.getLogger(__name__)

HOT_BODY_LIMIT = 2 * 1024 * 1024  # = voxmesh.gateway.app.MAX_BODY
PEER_HEADER = "X-Voxmesh-Peer"
_PASS = (b"content-type", b"accept", b"accept-encoding", b"accept-language", b"traceparent", b"tracestate")
_RELAY_SKIP = HOP_BY_HOP | {PEER_HEADER.lower().encode()}
_TOO_LARGE = json.dumps({"error": {
    "type": "payload_too_large", "param": None,
    "message": "request body too large: send a smaller body (or upload a file to /v1/jobs)",
}}).encode()  # fmt: skip
_JSON = [(b"Content-Type", b"application/json")]


def _enrolled_voice(body: bytes) -> bool:
    """Whether a speech body names an enrolled voice (``voice_<hex>``): cheap before parsing."""
    if b"voice_" not in body:
        return False
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return False  # the hot route answers 400
    return isinstance(data, dict) and is_enrolled_id(data.get("voice"))


def _content_type(req: Request) -> str:
    raw = req.header(b"content-type")
    if raw is None:
        return "application/octet-stream"  # what aiohttp's request.content_type says
    return raw.decode("latin-1").partition(";")[0].strip().lower()


class Relay:
    """Pass a request unchanged to the aiohttp app at ``url`` and stream its answer back.

    The client's address travels in ``X-Voxmesh-Peer`` (a client's own is dropped) so the
    app's loopback-only admin check still sees who is calling.
    """

    def __init__(self, url: str, timeout_s: float = 600.0) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.pool = ConnectionPool(None)

    async def __call__(self, req: Request, ex: Exchange) -> None:
        extra = header_lines(req.headers, _RELAY_SKIP)
        if req.header(b"host") is None:
            extra += b"Host: localhost\r\n"
        extra += f"{PEER_HEADER}: {req.peer}\r\n".encode("latin-1")
        try:
            resp, first = await self.pool.send(
                self.url, req.method, req.url.decode("latin-1"), req.body, self.timeout_s, extra
            )
        except (ConnectFailed, ConnectionBroken, TimeoutError) as exc:
            headers, body = error_parts(UpstreamError(f"the gateway's internal API did not answer: {exc}"))
            await ex.respond(502, headers, body)
            return
        if req.method == "HEAD":
            await ex.start(resp.status, resp.headers, resp.content_length)
            resp.close()
            return
        if resp.eof:
            resp.release()
            await ex.respond(resp.status, resp.headers, first)
            return
        try:
            await ex.start(resp.status, resp.headers, resp.content_length)
            data = first
            while data:
                await ex.write(data)
                data = await resp.read(self.timeout_s)
            await ex.end()
        except ConnectionError:
            resp.close()
            return
        except (TimeoutError, ConnectionBroken):
            resp.close()
            ex.abort()
            return
        resp.release()

    def close(self) -> None:
        self.pool.close()


class HeaderSink:
    """An exchange that adds the admission hooks' headers to the answer's head."""

    __slots__ = ("_ex", "_extra")

    def __init__(self, ex: Sink, extra: list[tuple[str, str]]) -> None:
        self._ex = ex
        self._extra = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in extra]

    async def respond(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        await self._ex.respond(status, [*headers, *self._extra], body)

    async def start(self, status: int, headers: list[tuple[bytes, bytes]], length: int | None) -> None:
        await self._ex.start(status, [*headers, *self._extra], length)

    async def write(self, data: bytes) -> None:
        await self._ex.write(data)

    async def end(self) -> None:
        await self._ex.end()

    def abort(self) -> None:
        self._ex.abort()


def _start_span(tracer: tracing.Tracing, req: Request, rid: str, trace: bytes | None) -> Any:
    """This exchange's SERVER span, made current for the data plane's attempt spans."""
    span = tracer.server_span(f"{req.method} {req.path}", traceparent=None if trace is None else trace.decode("latin-1"),
                              request_id=rid, attributes={"http.request.method": req.method, "http.route": req.path})
    tracing.CURRENT.set(span)
    return span


class HotRoutes:
    """Dispatch: a hot route is validated and forwarded, anything else is relayed."""

    def __init__(self, catalog: Catalog, dataplane: DataPlane, relay: Relay, relay_body_limit: int,
                 activate: Callable[[str], Awaitable[None]] | None = None, guard: Guard | None = None,
                 cors: CorsPolicy | None = None) -> None:
        self.cors = cors if cors is not None and cors.enabled else None
        self.catalog = catalog
        self.guard = guard
        self.activate = activate
        self.dataplane = dataplane
        self.relay = relay
        self.relay_body_limit = relay_body_limit
        self.routes = {
            ("POST", "/v1/audio/speech"): self._speech,
            ("POST", "/translate"): self._translate,
            ("POST", "/detect"): self._translate,
            ("POST", "/v1/translations"): self._translate,
            ("GET", "/languages"): self._translate,
            ("POST", "/v1/chat/completions"): self._translate,
        }

    def limit_for(self, method: str, path: str) -> int:
        return HOT_BODY_LIMIT if (method, path) in self.routes else self.relay_body_limit

    async def __call__(self, req: Request, ex: Exchange) -> None:
        route = self.routes.get((req.method, req.path))
        if req.too_large:
            await ex.respond(413, _JSON, _TOO_LARGE)
            ex.keep_alive = False  # the rest of a refused body may still be on its way
            return
        if route is None or (route == self._speech and _enrolled_voice(req.body)):
            # relayed whole: the app checks it (once) and resolves an enrolled voice for the
            # caller's tenant
            await self.relay(req, ex)
            return
        if self.cors is not None:
            origin = req.header(b"origin")
            if origin is not None:
                ex.extra = [(n.encode(), v.encode("latin-1"))
                            for n, v in self.cors.headers_for(origin.decode("latin-1"))]  # fmt: skip
        rid_header, trace = req.header(b"x-request-id"), req.header(b"traceparent")
        rid = pick_request_id(None if rid_header is None else rid_header.decode("latin-1"),
                              None if trace is None else trace.decode("latin-1"))
        REQUEST_ID.set(rid)  # this exchange's own task: its log lines carry the id
        tracer = tracing.TRACING  # OTLP export off: None, and this check is all it costs
        span = None if tracer is None else _start_span(tracer, req, rid, trace)
        with_id: Sink = IdSink(ex, rid)
        call = None
        sink = with_id
        try:
            if self.guard is not None:
                call, scope = self._call(req)
                principal = await self.guard.check(call, scope)
                if span is not None:
                    span.set_attribute("voxmesh.tenant", str(principal.tenant))
                if call.response_headers:
                    sink = HeaderSink(with_id, call.response_headers)
            await route(req, sink)
            if call is not None and self.guard is not None and self.guard.settle_hooks:
                answered = {n.decode("latin-1"): v.decode("latin-1") for n, v in ex.headers}
                await self.guard.settle(principal, call, ex.status, answered, ex.bytes_sent)
        except VoxmeshError as err:
            if call is not None and call.response_headers and sink is with_id:
                sink = HeaderSink(with_id, call.response_headers)  # a hook's headers on its own refusal too
            headers, body = error_parts(err)
            await sink.respond(err.status, headers, body)
        finally:
            if tracer is not None:
                tracing.CURRENT.set(None)
                tracer.end(span, ex.status or None)

    def _call(self, req: Request) -> tuple[Call, str]:
        """What the guard checks, as the aiohttp app's middleware builds it (a hot route's
        template is its path). Relayed requests are not checked here: the app checks them,
        so each request is checked once."""
        assert self.guard is not None
        path = req.path
        scope = scope_for(req.method, path)
        raw = req.header(b"authorization")
        authorization = None if raw is None else raw.decode("latin-1")
        api_key = None
        if authorization is None and self.guard.wants_body_key(scope):
            query = req.url.partition(b"?")[2].decode("latin-1")
            api_key = (parse_qs(query).get("api_key") or [""])[0] or api_key_from_body(_content_type(req), req.body)
        behalf = req.header(ON_BEHALF_HEADER.lower().encode())
        return Call(req.method, path, path, req.peer, authorization, api_key, req.body, _content_type(req),
                    None if behalf is None else behalf.decode("latin-1")), scope

    async def _forward(self, req: Request, ex: Sink, routed: str, path: str) -> None:
        extra = b"".join(n + b": " + v + b"\r\n" for n, v in req.headers if n.lower() in _PASS)
        extra += b"X-Request-Id: " + (REQUEST_ID.get() or "-").encode("latin-1") + b"\r\n"
        header = req.header(b"x-voxmesh-caller")
        caller = caller_label(None if header is None else header.decode("latin-1"), req.peer)
        if self.activate is not None and routed in self.catalog.kinds:
            await self.activate(routed)  # scale from zero: hold while the first replica starts
        await self.dataplane.exchange(
            ex, req.method, model=routed, path=path, body=req.body, extra=extra, caller=caller,
        )  # fmt: skip

    async def _speech(self, req: Request, ex: Sink) -> None:
        speech: SpeechRequest = parse_body(req.body, SpeechRequest)
        routed = self.catalog.resolve(speech.model)
        if self.catalog.kind_of(routed) != "tts":
            raise InvalidRequest(f"model {speech.model!r} is not a speech model", param="model")
        await self._forward(req, ex, routed, "/v1/audio/speech")

    async def _translate(self, req: Request, ex: Sink) -> None:
        routed = self.catalog.mt_target(_content_type(req), req.body)
        await self._forward(req, ex, routed, req.url.decode("latin-1"))
