"""One request id across hops, on both gateway servers (fast and aiohttp), with a real upstream
worker app (tone engine) that records what it received, and log lines that carry the id."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator
from concurrent.futures import Future

import aiohttp
import pytest
from aiohttp import web

from voxmesh.engines.tone import ToneEngine
from voxmesh.gateway.app import Catalog, Gateway, build_gateway_app
from voxmesh.gateway.balancer.pool import Endpoint, Reset
from voxmesh.gateway.dataplane import DataPlane
from voxmesh.gateway.fastpath import start_fast_gateway
from voxmesh.observability.requestid import configure_logging
from voxmesh.settings import Settings, WorkerSettings
from voxmesh.text.pronunciation import PronunciationDictionary
from voxmesh.worker.server import WorkerApp, build_worker_app

TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture
async def urls() -> AsyncIterator[tuple[dict[str, str], list[dict[str, str | None]]]]:
    seen: list[dict[str, str | None]] = []
    done: Future[None] = Future()
    done.set_result(None)
    worker = WorkerApp(ToneEngine(ms_per_char=1), model="tts", engine_name="tone", settings=WorkerSettings(),
                       cores=1, dictionary=PronunciationDictionary(), preloaded=done)
    wapp = build_worker_app(worker)

    @web.middleware
    async def record(request: web.Request, handler):  # type: ignore[no-untyped-def]
        seen.append({"rid": request.headers.get("X-Request-Id"), "trace": request.headers.get("traceparent")})
        logging.getLogger("voxmesh.test.worker").info("worker got a request")
        return await handler(request)

    wapp.middlewares.append(record)  # inner: runs after the worker's own request-id middleware
    wrunner = web.AppRunner(wapp, access_log=None)
    await wrunner.setup()
    wsite = web.TCPSite(wrunner, "127.0.0.1", 0)
    await wsite.start()
    wport = wsite._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    while not worker.ready:
        await asyncio.sleep(0.01)

    settings = Settings()
    dp = DataPlane(settings.gateway)
    await dp.start()
    dp.update("tts", Reset([Endpoint(id="tts-0", url=f"http://127.0.0.1:{wport}")]))
    gw = Gateway(settings, dp, Catalog(kinds={"tts": "tts"}))
    fast = await start_fast_gateway(gw, build_gateway_app(gw), "127.0.0.1", 0)
    runner = web.AppRunner(build_gateway_app(gw), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    aport = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield {"fast": f"http://127.0.0.1:{fast.port}", "aiohttp": f"http://127.0.0.1:{aport}"}, seen
    await fast.close(drain_s=1.0)
    await runner.cleanup()
    await dp.close()
    await wrunner.cleanup()


BODY = {"model": "tts", "input": "Hi there.", "voice": "low", "response_format": "wav"}


@pytest.mark.parametrize("server", ["fast", "aiohttp"])
@pytest.mark.parametrize("stream", [False, True])
async def test_the_id_is_made_taken_carried_and_echoed(urls, server: str, stream: bool) -> None:  # type: ignore[no-untyped-def]
    base, seen = urls
    body = {**BODY, "stream": stream}
    async with aiohttp.ClientSession() as http:
        # taken from the client
        async with http.post(base[server] + "/v1/audio/speech", json=body, headers={"X-Request-Id": "order-42"}) as r:
            assert r.status == 200 and r.headers.getall("X-Request-Id") == ["order-42"]
            await r.read()
        assert seen[-1]["rid"] == "order-42"
        # made at the gateway
        async with http.post(base[server] + "/v1/audio/speech", json=body) as r:
            made = r.headers.getall("X-Request-Id")
            await r.read()
        assert len(made) == 1 and len(made[0]) == 32 and seen[-1]["rid"] == made[0]
        # from W3C traceparent (which passes on too); a malformed id is replaced, not trusted
        async with http.post(base[server] + "/v1/audio/speech", json=body,
                             headers={"traceparent": TRACE, "X-Request-Id": "bad id\twith spaces"}) as r:
            assert r.headers["X-Request-Id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
            await r.read()
        assert seen[-1] == {"rid": "4bf92f3577b34da6a3ce929d0e0e4736", "trace": TRACE}
        # the gateway's own errors carry it too
        async with http.post(base[server] + "/v1/audio/speech", json={**body, "model": "nope"},
                             headers={"X-Request-Id": "err-1"}) as r:
            assert r.status == 404 and r.headers["X-Request-Id"] == "err-1"
        async with http.get(base[server] + "/v1/models", headers={"X-Request-Id": "relayed-1"}) as r:
            assert r.status == 200 and r.headers.getall("X-Request-Id") == ["relayed-1"]


async def test_log_lines_carry_the_id_as_json(urls) -> None:  # type: ignore[no-untyped-def]
    base, _ = urls
    out = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    configure_logging("INFO", "json", out)
    try:
        async with aiohttp.ClientSession() as http, http.post(
                base["fast"] + "/v1/audio/speech", json=BODY, headers={"X-Request-Id": "log-7"}) as r:
            await r.read()
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
        for h in saved[0]:
            root.addHandler(h)
        root.setLevel(saved[1])
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    mine = [rec for rec in lines if rec["logger"] == "voxmesh.test.worker"]
    assert mine and mine[-1]["request_id"] == "log-7" and mine[-1]["message"] == "worker got a request"
