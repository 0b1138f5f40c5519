"""What OTLP trace export costs the gateway's hot path: off (the default) vs on.

One process: a tone worker app (0 ms per character), the fast gateway in front of it, and an
OTLP/HTTP receiver on loopback that accepts and drops the batches. Rounds alternate off/on;
each round sends ``--requests`` speech requests from ``--clients`` closed-loop clients.
Medians over rounds of requests/s and of the per-request p50.

usage:
    PYTHONPATH=$PWD/src .venv/bin/python benchmarks/otlp_overhead.py --requests 400 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from concurrent.futures import Future

import aiohttp
from aiohttp import web

from voxmesh.engines.tone import ToneEngine
from voxmesh.gateway.app import Catalog, Gateway, build_gateway_app
from voxmesh.gateway.balancer.pool import Endpoint, Reset
from voxmesh.gateway.dataplane import DataPlane
from voxmesh.gateway.fastpath import start_fast_gateway
from voxmesh.observability import tracing
from voxmesh.settings import OtlpSettings, Settings, WorkerSettings
from voxmesh.text.pronunciation import PronunciationDictionary
from voxmesh.worker.server import WorkerApp, build_worker_app

BODY = {"model": "tts", "input": "Hi.", "voice": "low", "response_format": "pcm"}


async def _site(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


async def _round(url: str, n: int, clients: int) -> tuple[float, float]:
    lat: list[float] = []
    left = n

    async def client(http: aiohttp.ClientSession) -> None:
        nonlocal left
        while left > 0:
            left -= 1
            t = time.perf_counter()
            async with http.post(url, json=BODY) as r:
                await r.read()
                assert r.status == 200
            lat.append(time.perf_counter() - t)

    t0 = time.perf_counter()
    async with aiohttp.ClientSession() as http:
        await asyncio.gather(*(client(http) for _ in range(clients)))
    return n / (time.perf_counter() - t0), statistics.median(lat) * 1000


async def main(args: argparse.Namespace) -> None:
    done: Future[None] = Future()
    done.set_result(None)
    worker = WorkerApp(ToneEngine(ms_per_char=0), model="tts", engine_name="tone", settings=WorkerSettings(),
                       cores=1, dictionary=PronunciationDictionary(), preloaded=done)
    wrunner, wport = await _site(build_worker_app(worker))
    sink = web.Application()

    async def drop(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=b"", content_type="application/x-protobuf")

    sink.router.add_post("/v1/traces", drop)
    srunner, sport = await _site(sink)
    settings = Settings()
    dp = DataPlane(settings.gateway)
    await dp.start()
    dp.update("tts", Reset([Endpoint(id="tts-0", url=f"http://127.0.0.1:{wport}")]))
    gw = Gateway(settings, dp, Catalog(kinds={"tts": "tts"}))
    fast = await start_fast_gateway(gw, build_gateway_app(gw), "127.0.0.1", 0)
    url = f"http://127.0.0.1:{fast.port}/v1/audio/speech"
    results: dict[str, list[tuple[float, float]]] = {"off": [], "on": []}
    await _round(url, 50, args.clients)  # warm up
    for _ in range(args.rounds):
        for mode in ("off", "on"):
            if mode == "on":
                tracing.start_tracing(OtlpSettings(endpoint=f"http://127.0.0.1:{sport}"), "bench")
            results[mode].append(await _round(url, args.requests, args.clients))
            await asyncio.to_thread(tracing.stop_tracing)  # the sink runs on this loop
    await fast.close(drain_s=1.0)
    await dp.close()
    await wrunner.cleanup()
    await srunner.cleanup()
    print(f"| OTLP | requests/s (median of {args.rounds}) | p50 ms |\n|---|---|---|")
    for mode, rows in results.items():
        print(f"| {mode} | {statistics.median(r[0] for r in rows):.0f} | {statistics.median(r[1] for r in rows):.2f} |")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--requests", type=int, default=400)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--clients", type=int, default=4)
    asyncio.run(main(p.parse_args()))
