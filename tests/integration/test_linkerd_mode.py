"""``gateway.mesh: linkerd``: the gateway in front of Services, as the chart runs it.

A real ``voxmesh worker --engine tone`` listens on plain HTTP on loopback and stands in for
the Kubernetes Service (under Linkerd the proxy, not the gateway, does mTLS, retries,
breaking and balancing). A second real worker with ``VOXMESH_WORKER__FAULT_ERROR_RATE=1.0``
fails every synthesis with 500, and a tiny aiohttp upstream that always answers 503 (with
the proxy's ``l5d-proxy-error`` header) stands in for a Service whose pods shed load; both
count the requests they get, so the number of gateway attempts is measured, not assumed.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from voxmesh.deployments import DeploymentsConfig
from voxmesh.errors import ConfigError
from voxmesh.settings import load_settings
from voxmesh.stack import Stack

pytestmark = pytest.mark.slow

SPEECH = {"model": "tts-1", "input": "Hello from the cluster.", "voice": "low", "response_format": "pcm"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_worker(env: dict[str, str] | None = None) -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "voxmesh", "worker", "--engine", "tone", "--model", "tone",
         "--port", str(port), "--threads", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **(env or {})},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "/readyz", timeout=1) as r:
                    if json.load(r)["status"] == "ready":
                        break
            except (urllib.error.HTTPError, OSError):
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"tone worker on {url} did not become ready (exit {proc.poll()})")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def tone_service() -> Iterator[str]:
    """A real tone worker on plain HTTP: what ``http://<svc>.<ns>.svc.cluster.local`` reaches."""
    yield from _start_worker()


@pytest.fixture(scope="module")
def failing_service() -> Iterator[str]:
    """A real tone worker whose every synthesis fails (the worker's own fault injection: 500)."""
    yield from _start_worker({"VOXMESH_WORKER__FAULT_ERROR_RATE": "1.0"})


class Shedding:
    """An upstream that answers 503 like a Linkerd proxy with no ready pod, and records what it saw."""

    def __init__(self) -> None:
        self.hits = 0
        self.seen: list[dict[str, str]] = []
        self.runners: list[web.AppRunner] = []
        self.urls: list[str] = []

    async def handle(self, request: web.Request) -> web.Response:
        if request.method == "POST":  # not the gateway's GET /info for voices
            self.hits += 1
        self.seen.append({k.lower(): v for k, v in request.headers.items()})
        await request.read()
        return web.json_response(
            {"error": {"type": "unavailable", "message": "no ready pod"}}, status=503,
            headers={"l5d-proxy-error": "service in fail-fast", "l5d-proxy-connection": "close-test"},
        )  # fmt: skip

    async def start(self, n: int) -> None:
        for _ in range(n):
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", self.handle)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self.runners.append(runner)
            self.urls.append(f"http://127.0.0.1:{port}")

    async def stop(self) -> None:
        for r in self.runners:
            await r.cleanup()


@pytest.fixture
async def shedding() -> AsyncIterator[Shedding]:
    s = Shedding()
    await s.start(2)
    yield s
    await s.stop()


async def _stack(tmp_path: Path, mesh: str, deployments: list[dict[str, Any]]) -> Stack:
    settings = load_settings(None, data_dir=tmp_path / "data", server={"port": 0}, gateway={"mesh": mesh},
                             jobs={"runners": 0})  # fmt: skip
    config = DeploymentsConfig.model_validate({"deployments": deployments, "aliases": {"tts-1": deployments[0]["name"]}})
    st = Stack(settings, config)
    await st.start()
    return st


def _metric(text: str, name: str, **labels: str) -> float:
    """The sum over the series of ``name`` that carry ``labels``."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_linkerd_gateway_serves_a_tone_service(tmp_path: Path, tone_service: str) -> None:
    st = await _stack(tmp_path, "linkerd", [{"name": "tone", "external": {"urls": [tone_service], "kind": "tts"}}])
    try:
        assert st.mesh is None and not (tmp_path / "data" / "mesh").exists()  # no built-in CA
        assert st.supervisor.deployments == {}  # nothing supervised: KEDA scales the pods
        async with aiohttp.ClientSession() as session:
            async with session.post(st.url + "/v1/audio/speech", json=SPEECH) as resp:
                assert resp.status == 200, await resp.text()
                via_gateway = await resp.read()
            async with session.post(tone_service + "/v1/audio/speech", json=SPEECH) as resp:
                direct = await resp.read()
            assert via_gateway == direct and len(direct) > 1000  # the deterministic engine, relayed as is
            async with session.get(st.url + "/v1/audio/voices") as resp:
                voices = await resp.json()
            assert {v["id"] for v in voices["models"]["tone"]} == {"low", "high"}  # read from the Service's /info
            async with session.get(st.url + "/metrics") as resp:
                metrics = await resp.text()
        assert _metric(metrics, "voxmesh_route_requests_total", route="/v1/audio/speech", deployment="tone",
                       status="200") == 1  # fmt: skip
        assert _metric(metrics, "voxmesh_edge_requests_total", caller="client", deployment="tone",
                       classification="success") == 1  # fmt: skip
    finally:
        await st.stop()


async def test_a_503_is_not_retried_under_linkerd_and_the_service_is_never_ejected(
    tmp_path: Path, shedding: Shedding
) -> None:
    st = await _stack(tmp_path, "linkerd", [{"name": "svc", "external": {"urls": [shedding.urls[0]], "kind": "tts"}}])
    try:
        async with aiohttp.ClientSession() as session:
            for i in range(12):  # past the builtin breaker's 7 consecutive failures
                headers = {"l5d-dst-override": "evil.other-ns.svc.cluster.local:80", "X-Request-Id": f"r{i}"}
                async with session.post(st.url + "/v1/audio/speech", json=SPEECH, headers=headers) as resp:
                    assert resp.status == 503
                    assert resp.headers["l5d-proxy-error"] == "service in fail-fast"  # the proxy's reason, untouched
                    assert (await resp.json())["error"]["message"] == "no ready pod"  # the upstream's own answer
            async with session.get(st.url + "/metrics") as resp:
                metrics = await resp.text()
        assert shedding.hits == 12  # one attempt per request: Linkerd retries, not us
        assert _metric(metrics, "voxmesh_route_retries_total", deployment="svc") == 0
        assert _metric(metrics, "voxmesh_shed_total", deployment="svc") == 0  # never ejected
        assert _metric(metrics, "voxmesh_endpoint_breaker_state", deployment="svc") == 0
        assert all("l5d-dst-override" not in h for h in shedding.seen)  # a client cannot reroute in the mesh
        assert [h["x-request-id"] for h in shedding.seen if "x-request-id" in h] == [f"r{i}" for i in range(12)]
    finally:
        await st.stop()


async def test_the_same_503_is_retried_and_ejected_in_builtin_mode(tmp_path: Path, shedding: Shedding) -> None:
    """The same single URL, the same 503s: only ``gateway.mesh`` differs from the test above."""
    st = await _stack(tmp_path, "builtin", [{"name": "svc", "external": {"urls": [shedding.urls[0]], "kind": "tts"}}])
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(st.url + "/v1/audio/speech", json=SPEECH) as resp:
                assert resp.status == 503
            assert shedding.hits == st.settings.gateway.retry_max_attempts == 3  # the first attempt and 2 retries
            statuses = []
            for _ in range(11):
                async with session.post(st.url + "/v1/audio/speech", json=SPEECH) as resp:
                    statuses.append(resp.status)
            async with session.get(st.url + "/metrics") as resp:
                metrics = await resp.text()
        assert _metric(metrics, "voxmesh_route_retries_total", deployment="svc") >= 2
        assert _metric(metrics, "voxmesh_shed_total", deployment="svc", reason="all_ejected") >= 1  # the breaker ejected
        assert shedding.hits < 3 * 12  # once ejected, requests got no attempt at all
    finally:
        await st.stop()


async def test_linkerd_mode_refuses_an_engine_deployment_before_listening(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"engine: tone cannot run under gateway\.mesh=linkerd"):
        await _stack(tmp_path, "linkerd", [{"name": "tone", "engine": "tone"}])


def test_voxmesh_up_refuses_an_engine_under_linkerd_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "voxmesh.yaml"
    config.write_text("settings:\n  gateway: {mesh: linkerd}\ndeployments:\n  - name: tts-en\n    engine: piper\n")
    proc = subprocess.run(
        [sys.executable, "-m", "voxmesh", "--config", str(config), "up", "--port", "0", "--data-dir", str(tmp_path / "d")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "voxmesh: deployment 'tts-en': engine: piper cannot run under gateway.mesh=linkerd (the gateway runs no "
        "workers there); declare it as external: {urls: ['http://<svc>.<ns>.svc.cluster.local:<port>'], "
        "kind: ...} (voxmesh deploy render does this)"
    ]


@pytest.mark.parametrize(("mesh", "attempts"), [("linkerd", 1), ("builtin", 3)])
async def test_a_failing_worker_sees_one_attempt_per_request_only_under_linkerd(
    tmp_path: Path, failing_service: str, mesh: str, attempts: int
) -> None:
    """Counted by the worker itself (voxmesh_worker_requests_total{code="500"})."""

    async def worker_500s(session: aiohttp.ClientSession) -> float:
        async with session.get(failing_service + "/metrics") as resp:
            return _metric(await resp.text(), "voxmesh_worker_requests_total", code="500")

    st = await _stack(tmp_path, mesh, [{"name": "tone", "external": {"urls": [failing_service], "kind": "tts"}}])
    try:
        async with aiohttp.ClientSession() as session:
            before = await worker_500s(session)
            for _ in range(2):  # under the builtin breaker's 7 consecutive failures
                async with session.post(st.url + "/v1/audio/speech", json=SPEECH) as resp:
                    assert resp.status == 500
                    assert "injected fault" in (await resp.json())["error"]["message"]
            assert await worker_500s(session) - before == 2 * attempts
    finally:
        await st.stop()


async def test_voices_arrive_when_the_service_becomes_ready_after_the_gateway(tmp_path: Path) -> None:
    """In a cluster the gateway may be up before any worker pod: it keeps asking the Service."""
    ready = False

    async def info(request: web.Request) -> web.Response:
        if not ready:
            return web.json_response({"error": {"message": "no ready pod"}}, status=503)
        return web.json_response({"model": "tone", "voices": [{"id": "low"}, {"id": "high"}]})

    app = web.Application()
    app.router.add_get("/info", info)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}"
    st = await _stack(tmp_path, "linkerd", [{"name": "tone", "external": {"urls": [url], "kind": "tts"}}])
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(st.url + "/v1/audio/voices") as resp:
                assert (await resp.json())["models"]["tone"] == []
            ready = True
            deadline = time.monotonic() + 10
            while True:
                async with session.get(st.url + "/v1/audio/voices") as resp:
                    voices = (await resp.json())["models"]["tone"]
                if voices or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
        assert [v["id"] for v in voices] == ["low", "high"]
    finally:
        await st.stop()
        await runner.cleanup()
