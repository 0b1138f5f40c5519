"""OTLP trace export from a running stack (gateway in this process, tone workers as child
processes) to a real OTLP/HTTP receiver on loopback that decodes the protobuf bodies; and,
with the setting off, nothing sent and no OpenTelemetry SDK imported."""

from __future__ import annotations

import asyncio
import gzip
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

pytest.importorskip("opentelemetry.sdk", reason="the otlp extra (opentelemetry-sdk) is not installed")
pytest.importorskip("opentelemetry.exporter.otlp.proto.http", reason="opentelemetry-exporter-otlp-proto-http missing")
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from tests.support.stacks import start_stack, tone_config
from tests.support.waits import until

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
BODY = {"model": "voice-v1", "input": "Traced hello.", "voice": "low", "response_format": "wav"}


@dataclass
class Receiver:
    url: str
    posts: int = 0
    spans: list[dict[str, Any]] = field(default_factory=list)


def _value(v: Any) -> Any:
    return getattr(v, v.WhichOneof("value")) if v.WhichOneof("value") else None


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver("")

    async def traces(request: web.Request) -> web.Response:
        body = await request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        assert request.content_type == "application/x-protobuf"
        msg = ExportTraceServiceRequest()
        msg.ParseFromString(body)
        rec.posts += 1
        for rs in msg.resource_spans:
            service = {a.key: _value(a.value) for a in rs.resource.attributes}.get("service.name")
            for ss in rs.scope_spans:
                for s in ss.spans:
                    rec.spans.append({"service": service, "name": s.name, "kind": s.kind,
                                      "trace": s.trace_id.hex(), "id": s.span_id.hex(), "parent": s.parent_span_id.hex(),
                                      "attrs": {a.key: _value(a.value) for a in s.attributes}})
        return web.Response(body=ExportTraceServiceResponse().SerializeToString(),
                            content_type="application/x-protobuf")

    app = web.Application()
    app.router.add_post("/v1/traces", traces)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    rec.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    yield rec
    await runner.cleanup()


async def test_gateway_attempt_and_worker_spans_share_the_callers_trace(
        tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXMESH_OTLP__ENDPOINT", receiver.url)  # the workers inherit it
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "200")  # export within 0.2 s, not 5 s
    async with start_stack(tmp_path, tone_config()) as stack, aiohttp.ClientSession() as http:
        async with http.post(stack.url + "/v1/audio/speech", json=BODY,
                             headers={"traceparent": f"00-{TRACE_ID}-{PARENT}-01"}) as r:
            assert r.status == 200 and r.headers["X-Request-Id"] == TRACE_ID
            await r.read()
        async with http.post(stack.url + "/v1/audio/speech", json=BODY, headers={"X-Request-Id": "no-trace-1"}) as r:
            assert r.status == 200
            await r.read()
        async with http.post(stack.url + "/v1/audio/speech", json=BODY) as r:  # no id: the gateway makes one
            made = r.headers["X-Request-Id"]
            await r.read()
        relayed = "5bf92f3577b34da6a3ce929d0e0e4737"  # a route the fast server relays to the aiohttp app
        async with http.get(stack.url + "/v1/models", headers={"traceparent": f"00-{relayed}-{PARENT}-01"}) as r:
            assert r.status == 200
        mine = lambda: [s for s in receiver.spans if s["trace"] == TRACE_ID]  # noqa: E731
        await until(lambda: {s["service"] for s in mine()} >= {"voxmesh-gateway", "voxmesh-worker"}, 15,
                    f"gateway and worker spans of trace {TRACE_ID}: {receiver.spans}", every=0.1)
        await until(lambda: any(s["trace"] == relayed for s in receiver.spans), 5, "the relayed route's span",
                    every=0.1)
    # the id the gateway made is the trace id too: logs and traces meet on one id
    await asyncio.sleep(0)
    assert any(s["trace"] == made and s["kind"] == 2 and s["service"] == "voxmesh-gateway" for s in receiver.spans), made
    models = [s for s in receiver.spans if s["trace"] == relayed]
    assert len(models) == 1 and models[0]["parent"] == PARENT and models[0]["attrs"]["http.route"] == "/v1/models"
    assert models[0]["attrs"]["http.response.status_code"] == 200 and models[0]["service"] == "voxmesh-gateway"
    spans = mine()
    server = [s for s in spans if s["service"] == "voxmesh-gateway" and s["kind"] == 2]  # SPAN_KIND_SERVER
    attempt = [s for s in spans if s["service"] == "voxmesh-gateway" and s["kind"] == 3]  # SPAN_KIND_CLIENT
    worker = [s for s in spans if s["service"] == "voxmesh-worker"]
    assert len(server) == 1 and len(attempt) == 1 and len(worker) == 1, spans
    assert server[0]["parent"] == PARENT  # the caller's span is the gateway span's parent
    assert server[0]["attrs"]["http.route"] == "/v1/audio/speech"
    assert server[0]["attrs"]["http.response.status_code"] == 200
    assert server[0]["attrs"]["voxmesh.model"] == "voice-v1"
    assert server[0]["attrs"]["voxmesh.request_id"] == TRACE_ID
    assert attempt[0]["parent"] == server[0]["id"] and attempt[0]["attrs"]["http.response.status_code"] == 200
    assert attempt[0]["attrs"]["voxmesh.endpoint"].startswith("voice-v1")
    assert worker[0]["parent"] == attempt[0]["id"] and worker[0]["kind"] == 2
    assert worker[0]["attrs"]["http.route"] == "/v1/audio/speech"
    # no traceparent: a trace of its own, the request id as an attribute; probes make no spans
    other = [s for s in receiver.spans if s["attrs"].get("voxmesh.request_id") == "no-trace-1"]
    assert other and all(s["trace"] != TRACE_ID for s in other)
    assert not [s for s in receiver.spans if s["attrs"].get("http.route") in ("/healthz", "/readyz", "/metrics")]


_OFF = r"""
import asyncio, sys
from concurrent.futures import Future
import aiohttp
from aiohttp import web
from voxmesh.engines.tone import ToneEngine
from voxmesh.gateway.app import Catalog, Gateway, build_gateway_app
from voxmesh.gateway.balancer.pool import Endpoint, Reset
from voxmesh.gateway.dataplane import DataPlane
from voxmesh.gateway.fastpath import start_fast_gateway
from voxmesh.observability.tracing import start_tracing
from voxmesh.settings import Settings, WorkerSettings
from voxmesh.text.pronunciation import PronunciationDictionary
from voxmesh.worker.server import WorkerApp, build_worker_app

async def main():
    settings = Settings()
    assert settings.otlp.endpoint is None and start_tracing(settings.otlp, "x") is None
    done = Future(); done.set_result(None)
    worker = WorkerApp(ToneEngine(ms_per_char=0), model="tts", engine_name="tone", settings=WorkerSettings(),
                       cores=1, dictionary=PronunciationDictionary(), preloaded=done)
    wr = web.AppRunner(build_worker_app(worker), access_log=None); await wr.setup()
    site = web.TCPSite(wr, "127.0.0.1", 0); await site.start()
    port = site._server.sockets[0].getsockname()[1]
    dp = DataPlane(settings.gateway); await dp.start()
    dp.update("tts", Reset([Endpoint(id="tts-0", url=f"http://127.0.0.1:{port}")]))
    gw = Gateway(settings, dp, Catalog(kinds={"tts": "tts"}))
    app = build_gateway_app(gw)
    fast = await start_fast_gateway(gw, app, "127.0.0.1", 0)
    body = {"model": "tts", "input": "Hi.", "voice": "low", "response_format": "wav"}
    trace = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
    async with aiohttp.ClientSession() as http:
        for path in ("/v1/audio/speech", "/v1/models"):
            async with http.request("POST" if path.endswith("speech") else "GET",
                                    f"http://127.0.0.1:{fast.port}{path}", json=body, headers=trace) as r:
                assert r.status == 200, await r.text()
    await fast.close(drain_s=1.0); await dp.close(); await wr.cleanup()
    loaded = sorted(m for m in sys.modules if m.startswith("opentelemetry.sdk") or m.startswith("opentelemetry.exporter"))
    print("LOADED", loaded)

asyncio.run(main())
"""


async def test_off_by_default_nothing_sent_nothing_imported(receiver: Receiver) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOXMESH_OTLP")}
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.url  # the SDK's own variable must not turn it on either
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", _OFF, env=env, stdout=subprocess.PIPE,
                                                stderr=subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()
    assert "LOADED []" in out.decode(), out.decode()
    await asyncio.sleep(0.5)
    assert receiver.posts == 0 and receiver.spans == []


def test_a_missing_sdk_is_a_clear_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from voxmesh.errors import ConfigError
    from voxmesh.observability import tracing
    from voxmesh.settings import OtlpSettings

    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)  # as if the extra were not installed
    with pytest.raises(ConfigError, match=r"pip install 'voxmesh\[otlp\]'"):
        tracing.start_tracing(OtlpSettings(endpoint="http://127.0.0.1:9"), "x")
    assert tracing.TRACING is None
