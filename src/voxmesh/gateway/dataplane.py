"""The data plane: where the sans-IO policies meet sockets.

For each request :meth:`DataPlane.forward`:

1. picks the backend deployment of the public model by the weighted split (``split.py``);
2. picks an endpoint by power of two choices over peak-EWMA cost, skipping endpoints that
   their breaker ejected or that are at their in-flight cap (``balancer/``);
3. sends the buffered body with the original method, path and content type over a pooled
   keep-alive connection (``fastpath/client.py``: asyncio Protocols + httptools), and waits
   for the first body byte under the first-byte timeout; that wait is the EWMA sample (for
   streaming: time to first audio);
4. classifies the answer (``resilience/classify.py``) and, while no byte went to the
   client and the body is under the cap, retries a retryable attempt on another endpoint
   after a jittered backoff, if the retry budget, the attempt limit and the request
   deadline allow;
5. relays the answer to a :class:`~voxmesh.gateway.fastpath.sink.Sink`: a small body
   (Content-Length up to 64 KiB, or a stream that ended with its first read) as one
   response, anything else chunk by chunk as it arrives, each chunk under the idle-stream
   timeout;
6. feeds the outcome to the endpoint's breaker and records the golden metrics
   (``golden.py`` lists the metric names).

Errors the client sees (JSON ``{"error": ...}``, from ``voxmesh.errors``): 503 +
Retry-After when no endpoint can take the request (``NoHealthyUpstream`` when all are
ejected or none exists, ``Overloaded`` when all are saturated), 504 when the last attempt
timed out, 502 when the last attempt could not connect or the connection broke. An
upstream's own error status is relayed as is once retries are exhausted. A stream that
breaks after its head was sent cannot change its status: the client connection is closed
so the client sees a truncated body, never a clean end.

Two entry points share that path: :meth:`DataPlane.forward` for an aiohttp handler (it
returns the ``web.StreamResponse``), and :meth:`DataPlane.exchange`, which writes to any
``Sink`` (the fast server of ``fastpath/server.py`` uses it with no aiohttp at all).

Under ``gateway.mesh: linkerd`` (``meshmode.py``) the same path makes one attempt per
request and never ejects: the Linkerd proxy retries, breaks and balances.

Limits
    The request body is buffered (the gateway's callers already read it). TLS is whatever
    ``ssl`` context the caller passes (mTLS contexts come from ``voxmesh.mesh``).
    ``benchmarks/reports/gateway.md`` has the cost per request of each server side.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl as ssl_module
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web

from voxmesh.clock import Clock, monotonic
from voxmesh.errors import NoHealthyUpstream, Overloaded, UpstreamError, UpstreamTimeout, VoxmeshError
from voxmesh.gateway.balancer.p2c import PowerOfTwoChoices, Unavailable
from voxmesh.gateway.balancer.pool import Update
from voxmesh.gateway.fastpath.client import ConnectFailed, ConnectionBroken, ConnectionPool, Response
from voxmesh.gateway.fastpath.sink import AiohttpSink, Sink, error_parts
from voxmesh.gateway.golden import GoldenMetrics, summary
from voxmesh.gateway.meshmode import DataPlanePolicy
from voxmesh.gateway.resilience.backoff import Backoff
from voxmesh.gateway.resilience.breaker import BreakerState
from voxmesh.gateway.resilience.classify import ErrorKind, Outcome, classify
from voxmesh.gateway.resilience.timeouts import Deadlines, RouteTimeouts, TimeoutKind
from voxmesh.gateway.split import TrafficSplit
from voxmesh.gateway.upstreams import Attempt, Deployment, Upstream
from voxmesh.observability import tracing
from voxmesh.observability.metrics import Registry
from voxmesh.observability.requestid import REQUEST_ID
from voxmesh.settings import GatewaySettings

if TYPE_CHECKING:
    from voxmesh.gateway.golden import _RouteStats as RouteStats

__all__ = ["DataPlane"]

log = logging.getLogger(__name__)

BUFFER_LIMIT = 64 * 1024
_PASS_REQUEST = ("Content-Type", "Accept", "Accept-Encoding", "Accept-Language", "X-Request-Id", "traceparent",
                 "tracestate")
_BREAKER_GAUGE = {BreakerState.CLOSED: 0, BreakerState.OPEN: 1, BreakerState.HALF_OPEN: 2}
_TIMEOUT_NAMES = {
    TimeoutKind.FIRST_BYTE: "first-byte",
    TimeoutKind.REQUEST: "request",
    TimeoutKind.IDLE: "idle",
}


class _AttemptFailed(Exception):
    def __init__(self, kind: ErrorKind, detail: str, timeout: TimeoutKind | None = None, waited: float = 0.0):
        super().__init__(detail)
        self.kind, self.detail, self.timeout, self.waited = kind, detail, timeout, waited


class DataPlane:
    def __init__(
        self,
        settings: GatewaySettings,
        *,
        ssl: ssl_module.SSLContext | None = None,
        clock: Clock = monotonic,
        rng: random.Random | None = None,
        metrics: Registry | None = None,
        timeouts: Mapping[str, RouteTimeouts] | None = None,
    ) -> None:
        self.settings = settings
        self.policy = DataPlanePolicy.from_settings(settings)  # gateway.mesh: what we run ourselves
        self._ssl = ssl
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()
        self.registry = metrics if metrics is not None else Registry()
        self.golden = GoldenMetrics(self.registry)
        self.split = TrafficSplit(self._rng)
        self._p2c = PowerOfTwoChoices(self._rng)
        self._backoff = Backoff(settings.retry_backoff_min_s, settings.retry_backoff_max_s, 1.0, self._rng)
        self._retry_statuses = frozenset(settings.retry_statuses)
        self._default_timeouts = RouteTimeouts(
            settings.request_timeout_s, settings.first_byte_timeout_s, settings.idle_stream_timeout_s
        )
        self._timeouts: dict[str, RouteTimeouts] = dict(timeouts or {})
        self._deployments: dict[str, Deployment] = {}
        self._pool: ConnectionPool | None = None

    # ---- lifecycle and control -------------------------------------------------------
    async def start(self) -> None:
        self._pool = ConnectionPool(self._ssl, keepalive_s=30.0, small_limit=BUFFER_LIMIT)

    async def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    @property
    def pool(self) -> ConnectionPool | None:
        """The upstream connection pool (None before :meth:`start`)."""
        return self._pool

    def update(self, deployment: str, event: Update) -> None:
        """Apply one discovery event to the pool of ``deployment``."""
        dep = self._deployments.get(deployment)
        if dep is None:
            dep = self._deployments[deployment] = Deployment(
                deployment, self.settings, self._clock, self._rng, self.policy
            )
        delta = dep.pool.update(event)
        for ep in delta.removed:
            dep.upstreams.pop(ep.id, None)
            self.golden.forget_endpoint(deployment, ep.id)
            if self._pool is not None:
                self._pool.forget(ep.url)
        for ep in delta.added:
            dep.add(ep, self.golden.endpoint(deployment, ep.id))

    def set_split(self, model: str, weights: dict[str, float]) -> None:
        self.split.set(model, weights)

    def set_route_timeouts(self, route: str, timeouts: RouteTimeouts) -> None:
        self._timeouts[route] = timeouts

    def deployments(self) -> list[str]:
        return sorted(self._deployments)

    # ---- the request path ------------------------------------------------------------
    async def forward(
        self,
        request: web.Request,
        *,
        model: str,
        path: str,
        body: bytes,
        caller: str = "client",
        idempotent: bool = True,
    ) -> web.StreamResponse:
        """Send one client request to an upstream of ``model`` and relay the answer.

        ``idempotent``: synthesis and translation are pure, so a 500 may be retried.
        """
        extra = b"".join(
            f"{h}: {v}\r\n".encode("latin-1")
            for h in _PASS_REQUEST
            if (v := request.headers.get(h)) is not None
        )
        sink = AiohttpSink(request)
        await self.exchange(sink, request.method, model=model, path=path, body=body, extra=extra,
                            caller=caller, idempotent=idempotent)  # fmt: skip
        assert sink.response is not None
        return sink.response

    async def exchange(
        self,
        sink: Sink,
        method: str,
        *,
        model: str,
        path: str,
        body: bytes,
        extra: bytes = b"",
        caller: str = "client",
        idempotent: bool = True,
    ) -> None:
        """Like :meth:`forward`, writing the answer (or the JSON error) to ``sink``.

        ``extra``: ready ``Name: value\\r\\n`` request header lines to pass to the upstream
        (content type, accept, request id; never hop-by-hop ones).
        """
        if self._pool is None:
            raise RuntimeError("DataPlane.start() must be awaited before forward()")
        start = self._clock()
        route = path.partition("?")[0]
        deployment = self.split.pick(model)
        if tracing.TRACING is not None and (span := tracing.CURRENT.get()) is not None:
            span.set_attributes({"voxmesh.model": model, "voxmesh.deployment": deployment})
        stats = self.golden.route(route, deployment)
        try:
            status, ok, head_at = await self._forward(
                sink, method, deployment, route, path, body, extra, caller, idempotent, start, stats
            )
        except VoxmeshError as err:
            headers, payload = error_parts(err)
            await sink.respond(err.status, headers, payload)
            status, ok, head_at = str(err.status), err.status < 500, self._clock()
        self.golden.request_done(stats, route, deployment, status, ok, head_at - start)

    async def _forward(
        self,
        sink: Sink,
        method: str,
        deployment: str,
        route: str,
        path: str,
        body: bytes,
        extra: bytes,
        caller: str,
        idempotent: bool,
        start: float,
        stats: RouteStats,
    ) -> tuple[str, bool, float]:
        """The status label, success, and when the head went out."""
        dep = self._deployments.get(deployment)
        if dep is None or not dep.upstreams:
            self.golden.shed.labels(deployment, "no_endpoints").inc()
            raise NoHealthyUpstream(
                f"deployment {deployment!r} has no endpoints: no worker is ready yet or none is declared",
                retry_after=1.0,
            )
        deadlines = self._timeouts.get(route, self._default_timeouts).start(start)
        dep.budget.deposit()
        tried: set[str] = set()
        last_error: VoxmeshError | None = None
        for attempt_no in range(self.policy.max_attempts):
            choice = self._p2c.choose(dep.candidates(self._clock()), exclude=frozenset(tried))
            if isinstance(choice, Unavailable):
                if last_error is not None:
                    raise last_error
                raise self._unavailable(dep, choice)
            up = dep.upstreams[choice]
            tried.add(choice)
            with Attempt(
                up, self.golden.edge(caller, deployment, up.endpoint.id), self.golden, self._clock
            ) as att:
                try:
                    resp, first, latency = await self._send(method, up, path, body, extra, deadlines)
                except _AttemptFailed as exc:
                    if exc.kind is ErrorKind.TIMEOUT:
                        up.ewma.observe(exc.waited)  # a lower bound of its latency
                    outcome = classify(error=exc.kind, idempotent=idempotent)
                    att.end(outcome, None)
                    last_error = self._attempt_error(dep.name, exc, attempt_no + 1)
                    if outcome is not Outcome.RETRYABLE or not self._may_retry(
                        dep, attempt_no, body, deadlines
                    ):
                        raise last_error from None
                else:
                    up.ewma.observe(latency)
                    outcome = classify(status=resp.status, retry_statuses=self._retry_statuses,
                                       idempotent=idempotent)  # fmt: skip
                    if outcome is not Outcome.RETRYABLE or not self._may_retry(
                        dep, attempt_no, body, deadlines
                    ):
                        return await self._relay(sink, resp, first, latency, att, outcome, deadlines)
                    resp.release()
                    att.end(outcome, latency)
                    last_error = UpstreamError(f"deployment {dep.name!r} answered {resp.status}")
            # Retrying: the budget was charged by _may_retry.
            stats.retries.inc()
            await asyncio.sleep(self._backoff.delay(attempt_no))
        assert last_error is not None
        raise last_error

    def _may_retry(self, dep: Deployment, attempt_no: int, body: bytes, deadlines: Deadlines) -> bool:
        if attempt_no + 1 >= self.policy.max_attempts or len(body) > self.settings.retry_body_cap:
            return False
        if not deadlines.can_retry(self._clock(), self.settings.retry_backoff_max_s):
            return False
        if not dep.budget.try_withdraw():
            self.golden.budget_exhausted.labels(dep.name).inc()
            return False
        return True

    def _unavailable(self, dep: Deployment, why: Unavailable) -> VoxmeshError:
        self.golden.shed.labels(dep.name, why.name.lower()).inc()
        if why is Unavailable.ALL_SATURATED:
            return Overloaded(
                f"deployment {dep.name!r} is saturated: every endpoint has "
                f"{self.settings.max_in_flight_per_endpoint} requests in flight; retry later",
                retry_after=1.0,
            )
        now = self._clock()
        wait = min((u.breaker.open_until - now for u in dep.upstreams.values()), default=1.0)
        return NoHealthyUpstream(
            f"deployment {dep.name!r} has no healthy endpoint: {why.value}; retry later",
            retry_after=max(1.0, wait),
        )

    @staticmethod
    def _attempt_error(deployment: str, exc: _AttemptFailed, attempts: int) -> VoxmeshError:
        tries = f"after {attempts} attempt{'s' if attempts > 1 else ''}"
        if exc.kind is ErrorKind.TIMEOUT:
            assert exc.timeout is not None
            return UpstreamTimeout(
                f"deployment {deployment!r} did not answer within the {_TIMEOUT_NAMES[exc.timeout]} timeout "
                f"({exc.waited:.1f} s) {tries}"
            )
        return UpstreamError(f"deployment {deployment!r} could not be reached {tries}: {exc.detail}")

    async def _send(
        self, method: str, up: Upstream, path: str, body: bytes, extra: bytes, deadlines: Deadlines
    ) -> tuple[Response, bytes, float]:
        assert self._pool is not None
        tracer = tracing.TRACING  # OTLP export off: None, and this check is all it costs
        sent = self._clock()
        wait, kind = deadlines.first_byte(sent)
        try:
            if tracer is None:
                resp, first = await self._pool.send(up.endpoint.url, method, path, body, wait, extra)
            else:
                resp, first = await self._send_traced(tracer, method, up, path, body, wait, extra)
        except TimeoutError as exc:
            raise _AttemptFailed(ErrorKind.TIMEOUT, "timed out", kind, self._clock() - sent) from exc
        except ConnectFailed as exc:
            raise _AttemptFailed(ErrorKind.CONNECT, str(exc)) from exc
        except ConnectionBroken as exc:
            raise _AttemptFailed(ErrorKind.RESET, str(exc)) from exc
        return resp, first, self._clock() - sent

    async def _send_traced(
        self, tracer: tracing.Tracing, method: str, up: Upstream, path: str, body: bytes, wait: float, extra: bytes
    ) -> tuple[Response, bytes]:
        """One attempt in a CLIENT span (OTLP export on); the worker gets a traceparent naming it."""
        assert self._pool is not None
        span = tracer.attempt_span(f"{method} {path.partition('?')[0]}", {
            "http.request.method": method, "url.path": path, "server.address": up.endpoint.url,
            "voxmesh.endpoint": up.endpoint.id, "voxmesh.request_id": REQUEST_ID.get() or "-"})
        try:
            resp, first = await self._pool.send(up.endpoint.url, method, path, body, wait,
                                                tracing.with_traceparent(extra, tracer.traceparent(span)))
        except BaseException as exc:
            tracer.end(span, None, exc)
            raise
        tracer.end(span, resp.status)
        return resp, first

    async def _relay(
        self, sink: Sink, resp: Response, first: bytes, latency: float, att: Attempt, outcome: Outcome,
        deadlines: Deadlines,
    ) -> tuple[str, bool, float]:  # fmt: skip
        status = resp.status
        if resp.eof:
            resp.release()
            att.end(outcome, latency)
            await sink.respond(status, resp.headers, first)
            return str(status), status < 500, self._clock()
        head_at = self._clock()
        try:
            await sink.start(status, resp.headers, resp.content_length)
            chunk = first
            while chunk:
                await sink.write(chunk)
                wait, _ = deadlines.next_chunk(self._clock())
                try:
                    chunk = await resp.read(wait)
                except (TimeoutError, ConnectionBroken) as exc:
                    log.warning("stream from %s broke after the head was sent: %r", att.up.endpoint.id, exc)
                    resp.close()
                    att.end(Outcome.FAILURE, latency)
                    sink.abort()
                    return "stream_error", False, head_at
            await sink.end()
        except ConnectionError:
            resp.close()  # the client went away: not the upstream's fault
            att.end(outcome, latency)
            return "client_closed", True, self._clock()
        resp.release()
        att.end(outcome, latency)
        return str(status), status < 500, head_at

    # ---- views -----------------------------------------------------------------------
    def _refresh_gauges(self) -> None:
        now = self._clock()
        for dep in self._deployments.values():
            for eid, up in dep.upstreams.items():
                self.golden.ep_breaker.labels(dep.name, eid).set(_BREAKER_GAUGE[up.breaker.state(now)])
                self.golden.ep_ewma.labels(dep.name, eid).set(up.ewma.estimate())

    def metrics_text(self) -> str:
        """The golden metrics in the Prometheus text format."""
        self._refresh_gauges()
        return self.registry.render()

    def topology(self) -> dict[str, Any]:
        """Live figures per route, deployment, endpoint and edge, for ``/admin/topology``."""
        now = self._clock()
        deployments: dict[str, Any] = {}
        for name, dep in sorted(self._deployments.items()):
            requests, successes, hist = self.golden.deployment_totals(name)
            deployments[name] = {
                **summary(requests, successes, hist),
                "retry_budget": {
                    "balance": round(dep.budget.balance(), 2),
                    "retries": dep.budget.retries,
                    "refused": dep.budget.refused,
                },
                "endpoints": [up.view(now) for up in dep.upstreams.values()],
            }
        return {
            "routes": self.golden.routes_view(),
            "splits": {m: self.split.weights(m) for m in self.split.models()},
            "deployments": deployments,
            "edges": self.golden.edges_view(),
        }
