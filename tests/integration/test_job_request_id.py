"""A job keeps the request id of its submission: a real gateway (fast server relaying to the
aiohttp app with the job routes), a real tone worker app that records what it received, a
SQLite job store, a runner synthesizing through the gateway, and a webhook receiver."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from voxmesh.engines.tone import ToneEngine
from voxmesh.gateway.app import Catalog, Gateway, build_gateway_app
from voxmesh.gateway.balancer.pool import Endpoint, Reset
from voxmesh.gateway.dataplane import DataPlane
from voxmesh.gateway.fastpath import start_fast_gateway
from voxmesh.jobs.routes import setup_job_routes
from voxmesh.jobs.synth import HttpSynthesizer
from voxmesh.jobs.wiring import make_runner, open_jobs
from voxmesh.observability.requestid import configure_logging
from voxmesh.settings import Settings, WorkerSettings
from voxmesh.storage.schema import REQUEST_ID_KEY
from voxmesh.text.pronunciation import PronunciationDictionary
from voxmesh.worker.server import WorkerApp, build_worker_app


@dataclass
class Rig:
    url: str
    worker_ids: list[str | None]
    hooks: list[str | None]
    hook_url: str
    logs: io.StringIO


async def _site(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    worker_ids: list[str | None] = []
    hooks: list[str | None] = []
    done: Future[None] = Future()
    done.set_result(None)
    worker = WorkerApp(ToneEngine(ms_per_char=0), model="tts", engine_name="tone", settings=WorkerSettings(),
                       cores=1, dictionary=PronunciationDictionary(), preloaded=done)
    wapp = build_worker_app(worker)

    @web.middleware
    async def record(request: web.Request, handler):  # type: ignore[no-untyped-def]
        if request.path == "/v1/audio/speech":
            worker_ids.append(request.headers.get("X-Request-Id"))
        return await handler(request)

    wapp.middlewares.append(record)
    wrunner, wport = await _site(wapp)

    async def hook(request: web.Request) -> web.Response:
        hooks.append(request.headers.get("X-Request-Id"))
        return web.Response(text="ok")

    happ = web.Application()
    happ.router.add_post("/hook", hook)
    hrunner, hport = await _site(happ)

    settings = Settings(data_dir=tmp_path / "data", jobs={"chunk_chars": 60, "poll_interval_s": 0.05})
    jobs = await open_jobs(settings)
    dp = DataPlane(settings.gateway)
    await dp.start()
    dp.update("tts", Reset([Endpoint(id="tts-0", url=f"http://127.0.0.1:{wport}")]))
    gw = Gateway(settings, dp, Catalog(kinds={"tts": "tts"}))
    fast = await start_fast_gateway(gw, build_gateway_app(gw, setup=[lambda app: setup_job_routes(app, jobs.service)]),
                                    "127.0.0.1", 0)
    url = f"http://127.0.0.1:{fast.port}"
    synth = HttpSynthesizer(url, sample_rate=16000)

    logs = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    configure_logging("INFO", "json", logs)
    task = asyncio.ensure_future(make_runner(jobs, synth, owner="r0").run())
    try:
        yield Rig(url, worker_ids, hooks, f"http://127.0.0.1:{hport}/hook", logs)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        for h in list(root.handlers):
            root.removeHandler(h)
        for h in saved[0]:
            root.addHandler(h)
        root.setLevel(saved[1])
        await synth.close()
        await fast.close(drain_s=1.0)
        await dp.close()
        await jobs.close()
        await hrunner.cleanup()
        await wrunner.cleanup()


async def _submit(http: aiohttp.ClientSession, rig: Rig, rid: str | None, **body: Any) -> tuple[str, str]:
    headers = {} if rid is None else {"X-Request-Id": rid}
    async with http.post(rig.url + "/v1/jobs", json={"model": "tts", "voice": "low", "webhook_url": rig.hook_url,
                                                      **body}, headers=headers) as r:
        assert r.status == 201, await r.text()
        return (await r.json())["id"], r.headers["X-Request-Id"]


async def _finish(http: aiohttp.ClientSession, rig: Rig, job_id: str, n_hooks: int) -> dict[str, Any]:
    for _ in range(400):
        async with http.get(f"{rig.url}/v1/jobs/{job_id}") as r:
            st: dict[str, Any] = await r.json()
        if st["state"] in ("succeeded", "failed") and len(rig.hooks) >= n_hooks:
            return st
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish with its webhook: {st}, hooks {rig.hooks}")


async def test_chunks_and_webhook_carry_the_submission_id(rig: Rig) -> None:
    text = " ".join(f"Sentence number {i} of a text the runner cuts into chunks." for i in range(5))
    async with aiohttp.ClientSession() as http:
        job_id, echoed = await _submit(http, rig, "abc123", text=text)
        assert echoed == "abc123"
        st = await _finish(http, rig, job_id, 1)
        assert st["state"] == "succeeded" and st["chunks_total"] >= 3
        assert sorted(rig.worker_ids) == sorted(f"abc123-c{i}" for i in range(st["chunks_total"]))
        assert rig.hooks == ["abc123"]
        # no id given: the gateway makes one, and the job keeps that one
        rig.worker_ids.clear()
        job2, made = await _submit(http, rig, None, text="Just one short chunk.")
        await _finish(http, rig, job2, 2)
        assert len(made) == 32 and rig.worker_ids == [f"{made}-c0"] and rig.hooks[-1] == made


async def test_the_runner_logs_a_failed_chunk_under_the_submission_id(rig: Rig) -> None:
    async with aiohttp.ClientSession() as http:
        job_id, _ = await _submit(http, rig, "bad-7", text="This one cannot be spoken.",
                                  options={"emotion": "furious"})
        st = await _finish(http, rig, job_id, 1)
    assert st["state"] == "failed" and rig.hooks == ["bad-7"]  # the gateway refused it (400) before a worker
    lines = [json.loads(line) for line in rig.logs.getvalue().splitlines()]
    dead = [rec for rec in lines if rec["logger"] == "voxmesh.jobs.runner" and "dead after" in rec["message"]]
    assert dead and dead[0]["request_id"] == "bad-7-c0", lines


async def test_the_reserved_key_is_refused_in_options(rig: Rig) -> None:
    async with aiohttp.ClientSession() as http, http.post(
            rig.url + "/v1/jobs", json={"model": "tts", "voice": "low", "text": "Hi.",
                                        "options": {REQUEST_ID_KEY: "forged"}}) as r:
        assert r.status == 400 and REQUEST_ID_KEY in (await r.json())["error"]["message"]
