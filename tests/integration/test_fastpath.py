"""The fast gateway server on loopback: hot routes through the data plane, the rest relayed.

Upstreams: ``voxmesh.gateway.echo_upstream`` subprocesses (real processes, real sockets) and,
for streaming and mTLS, small aiohttp apps in the test's loop. The gateway is the real
``Gateway`` + ``build_gateway_app`` behind :func:`start_fast_gateway`; answers are compared
with the same app served by aiohttp directly where the contract is "same as today".
"""

from __future__ import annotations

import asyncio
import io
import json
import random
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from voxmesh.gateway.app import Catalog, Gateway, build_gateway_app
from voxmesh.gateway.balancer.pool import Endpoint, Reset
from voxmesh.gateway.dataplane import DataPlane
from voxmesh.gateway.fastpath import FastGatewayServer, start_fast_gateway
from voxmesh.gateway.resilience.timeouts import RouteTimeouts
from voxmesh.mesh.ca import CertificateAuthority
from voxmesh.mesh.certs import issue_identity, spiffe_id
from voxmesh.mesh.tls import client_context, server_context
from voxmesh.settings import Settings

SPEECH = {"model": "tts", "input": "Hello there.", "voice": "joe", "response_format": "wav"}


@pytest.fixture
def echo() -> Iterator[list[str]]:
    """Start echo upstream processes: ``url = start(name, *args)``."""
    procs: list[subprocess.Popen[str]] = []
    urls: list[str] = []

    def start(name: str, *args: str) -> str:
        proc = subprocess.Popen([sys.executable, "-m", "voxmesh.gateway.echo_upstream", "--name", name, *args],
                                stdout=subprocess.PIPE, text=True)  # fmt: skip
        procs.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("PORT "), line
        url = f"http://127.0.0.1:{int(line.split()[1])}"
        urls.append(url)
        return url

    yield start  # type: ignore[misc]
    for p in procs:
        p.kill()
        p.wait()
        assert p.stdout is not None
        p.stdout.close()


@dataclass
class Stack:
    gw: Gateway
    dp: DataPlane
    fast: FastGatewayServer
    url: str
    plain_url: str  # the same gateway served by aiohttp directly
    session: aiohttp.ClientSession


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    settings = Settings()
    settings.gateway.retry_backoff_min_s = 0.001
    dp = DataPlane(settings.gateway, rng=random.Random(3),
                   timeouts={"/slow": RouteTimeouts(request_s=0.8, first_byte_s=0.3, idle_s=0.3)})  # fmt: skip
    await dp.start()
    catalog = Catalog(kinds={"tts": "tts", "mt": "mt"})
    gw = Gateway(settings, dp, catalog)
    fast = await start_fast_gateway(gw, build_gateway_app(gw), "127.0.0.1", 0)
    runner = web.AppRunner(build_gateway_app(gw), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    session = aiohttp.ClientSession()
    yield Stack(gw, dp, fast, f"http://127.0.0.1:{fast.port}", f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}",  # type: ignore[union-attr]
                session)  # fmt: skip
    await session.close()
    await fast.close(drain_s=1.0)
    await runner.cleanup()
    await dp.close()


async def post(
    s: Stack, path: str, base: str | None = None, **kw: object
) -> tuple[int, dict[str, str], bytes]:
    async with s.session.post((base or s.url) + path, **kw) as r:  # type: ignore[arg-type]
        return r.status, dict(r.headers), await r.read()


async def test_speech_is_forwarded_over_one_kept_alive_upstream_connection(stack: Stack, echo) -> None:  # type: ignore[no-untyped-def]
    stack.dp.update("tts", Reset([Endpoint("a", echo("a"))]))
    for _ in range(5):
        status, headers, body = await post(
            stack, "/v1/audio/speech", json=SPEECH, headers={"X-Request-Id": "r1"}
        )
        assert status == 200 and headers["X-Upstream"] == "a"
        echoed = json.loads(body)
        assert echoed["path"] == "/v1/audio/speech" and echoed["content_type"] == "application/json"
        assert echoed["len"] == len(json.dumps(SPEECH))
    assert stack.dp.pool is not None and stack.dp.pool.connects == 1  # keep-alive reuse
    assert 'route="/v1/audio/speech",deployment="tts",status="200"} 5' in stack.dp.metrics_text()


@pytest.mark.parametrize("body,ctype", [
    (b"not json", "application/json"),
    (b'{"model":"tts"}', "application/json"),
    (b'{"model":"tts","input":"x","bogus":1}', "application/json"),
    (b'{"model":"nope","input":"x"}', "application/json"),
    (b'{"model":"mt","input":"x"}', "application/json"),
    (b"[1]", "application/json"),
])  # fmt: skip
async def test_validation_errors_match_the_aiohttp_app(stack: Stack, body: bytes, ctype: str) -> None:
    fast = await post(stack, "/v1/audio/speech", data=body, headers={"Content-Type": ctype})
    plain = await post(
        stack, "/v1/audio/speech", base=stack.plain_url, data=body, headers={"Content-Type": ctype}
    )
    assert fast[0] == plain[0] and fast[0] in (400, 404)
    assert json.loads(fast[2]) == json.loads(plain[2])
    assert fast[1]["Content-Type"].startswith("application/json")


async def test_translation_routes_and_mt_errors_match(stack: Stack, echo) -> None:  # type: ignore[no-untyped-def]
    stack.dp.update("mt", Reset([Endpoint("m", echo("m"))]))
    status, _, body = await post(stack, "/translate?x=1", data=b"q=hi&source=en&target=zh",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert status == 200 and json.loads(body)["path"] == "/translate?x=1"
    async with stack.session.get(stack.url + "/languages") as r:
        assert r.status == 200 and json.loads(await r.read())["method"] == "GET"
    for bad in (b'{"model":"tts","q":"hi"}', b"{oops"):
        fast = await post(stack, "/v1/translations", data=bad, headers={"Content-Type": "application/json"})
        plain = await post(stack, "/v1/translations", base=stack.plain_url, data=bad,
                           headers={"Content-Type": "application/json"})  # fmt: skip
        assert fast[0] == plain[0] == 400 and json.loads(fast[2]) == json.loads(plain[2])


async def test_bodies_up_to_2_mib_pass_and_larger_are_413(stack: Stack, streamer: str) -> None:
    stack.dp.update("mt", Reset([Endpoint("m", streamer)]))
    big = b"x" * (2 * 1024 * 1024)
    status, _, body = await post(stack, "/translate?count=1", data=io.BytesIO(big),
                                 headers={"Content-Type": "text/plain"})  # fmt: skip
    assert status == 200 and json.loads(body)["len"] == len(big)
    fast = await post(
        stack, "/translate", data=io.BytesIO(big + b"x"), headers={"Content-Type": "text/plain"}
    )
    plain = await post(stack, "/translate", base=stack.plain_url, data=io.BytesIO(big + b"x"),
                       headers={"Content-Type": "text/plain"})  # fmt: skip
    assert fast[0] == plain[0] == 413 and json.loads(fast[2]) == json.loads(plain[2])


async def test_no_endpoint_is_503_with_retry_after(stack: Stack) -> None:
    status, headers, body = await post(stack, "/v1/audio/speech", json=SPEECH)
    assert status == 503 and headers["Retry-After"] == "1"
    assert "has no endpoints" in json.loads(body)["error"]["message"]


async def test_connection_failure_is_retried_on_another_endpoint(stack: Stack, echo) -> None:  # type: ignore[no-untyped-def]
    stack.dp.update("tts", Reset([Endpoint("dead", "http://127.0.0.1:9"), Endpoint("a", echo("a"))]))
    for _ in range(6):
        status, headers, _ = await post(stack, "/v1/audio/speech", json=SPEECH)
        assert status == 200 and headers["X-Upstream"] == "a"
    view = {e["id"]: e for e in stack.dp.topology()["deployments"]["tts"]["endpoints"]}
    assert view["dead"]["requests"] >= 1 and view["dead"]["success_rate"] == 0.0
    assert stack.dp.topology()["routes"][0]["retries"] == view["dead"]["requests"]


async def test_killed_upstream_connection_in_the_pool_is_replaced(stack: Stack, echo) -> None:  # type: ignore[no-untyped-def]
    url = echo("a")
    stack.dp.update("tts", Reset([Endpoint("a", url)]))
    assert (await post(stack, "/v1/audio/speech", json=SPEECH))[0] == 200
    async with stack.session.post(url + "/_fault", json={"delay_ms": 0}) as r:  # keeps the process, new conn
        assert r.status == 200
    pool = stack.dp.pool
    assert pool is not None and pool.idle_count(url) == 1
    for conn in pool._endpoints[url].idle:  # the upstream closes its side while the connection is idle
        assert conn.transport is not None
        conn.transport.get_extra_info("socket").shutdown(2)
    await asyncio.sleep(0.05)
    assert (await post(stack, "/v1/audio/speech", json=SPEECH))[0] == 200


async def test_first_byte_timeout_is_504(stack: Stack, echo) -> None:  # type: ignore[no-untyped-def]
    stack.dp.update("mt", Reset([Endpoint("slow", echo("slow", "--delay-ms", "2000"))]))
    stack.dp.set_route_timeouts("/translate", RouteTimeouts(request_s=0.6, first_byte_s=0.25, idle_s=0.5))
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    status, _, body = await post(stack, "/translate", data=b"q=1", headers={"Content-Type": "text/plain"})
    assert status == 504 and loop.time() - t0 < 1.0
    assert "first-byte timeout" in json.loads(body)["error"]["message"]


@pytest.fixture
async def streamer() -> AsyncIterator[str]:
    """An upstream that streams 4 chunks 150 ms apart on any path; ``?gap_ms=`` and ``?break_at=``."""

    async def handle(request: web.Request) -> web.StreamResponse:
        if "count" in request.query:
            return web.json_response({"len": len(await request.read())})
        gap = float(request.query.get("gap_ms", "150")) / 1000
        resp = web.StreamResponse(headers={"Content-Type": "audio/wav"})
        await resp.prepare(request)
        for i in range(4):
            if i:
                await asyncio.sleep(gap)
            if request.query.get("break_at") == str(i) and request.transport is not None:
                request.transport.abort()
                return resp
            await resp.write(f"chunk{i};".encode())
        await resp.write_eof()
        return resp

    app = web.Application(client_max_size=8 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    await runner.cleanup()


async def test_streaming_flows_chunk_by_chunk_and_breaks_are_truncations(stack: Stack, streamer: str) -> None:
    stack.dp.update("mt", Reset([Endpoint("s", streamer)]))
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    arrivals: list[tuple[float, bytes]] = []
    async with stack.session.post(stack.url + "/translate", data=b"q") as r:
        assert r.status == 200 and r.headers["Transfer-Encoding"] == "chunked"
        async for data in r.content.iter_any():
            arrivals.append((loop.time() - t0, data))
    assert b"".join(d for _, d in arrivals) == b"chunk0;chunk1;chunk2;chunk3;"
    assert arrivals[0][0] < 0.12 and arrivals[-1][0] > 0.4
    got = b""
    with pytest.raises(aiohttp.ClientPayloadError):
        async with stack.session.post(stack.url + "/translate?gap_ms=20&break_at=2", data=b"q") as r:
            async for data in r.content.iter_any():
                got += data
    assert got == b"chunk0;chunk1;"
    assert 'status="stream_error"} 1' in stack.dp.metrics_text()


async def test_non_hot_routes_are_relayed_to_the_aiohttp_app(stack: Stack, echo) -> None:  # type: ignore[no-untyped-def]
    for path in ("/v1/models", "/healthz", "/metrics", "/nope", "/admin/topology"):
        async with stack.session.get(stack.url + path) as f, stack.session.get(stack.plain_url + path) as p:
            assert f.status == p.status, path
            if f.content_type == "application/json" and path != "/admin/topology":
                assert await f.json() == await p.json(), path
    async with stack.session.get(stack.url + "/v1/audio/speech") as r:  # wrong method: aiohttp's 405
        assert r.status == 405 and (await r.json())["error"]["type"] == "invalid_request_error"
    # admin from loopback is allowed; a client cannot spoof the relay's peer header into anything else
    async with stack.session.put(stack.url + "/admin/splits/voice", json={"weights": {"tts": 1}},
                                 headers={"X-Voxmesh-Peer": "10.9.9.9"}) as r:  # fmt: skip
        assert r.status == 200
    assert stack.gw.catalog.splits["voice"] == {"tts": 1.0}


async def test_peer_header_on_the_unix_socket_is_the_remote_address(stack: Stack) -> None:
    sock = str(stack.fast._dir / "app.sock")
    async with (
        aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=sock)) as s,
        s.put("http://localhost/admin/splits/voice", json={"weights": {"tts": 1}},
              headers={"X-Voxmesh-Peer": "10.9.9.9"}) as r,  # fmt: skip
    ):
        assert r.status == 403 and (await r.json())["error"]["type"] == "permission_error"


async def _raw(port: int, data: bytes, until: bytes, timeout: float = 3.0) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    got = b""
    try:
        async with asyncio.timeout(timeout):
            while got.count(until) < 1:
                got += await reader.read(65536)
    finally:
        writer.close()
    return got


async def test_expect_continue_and_pipelined_requests(stack: Stack, echo) -> None:  # type: ignore[no-untyped-def]
    stack.dp.update("mt", Reset([Endpoint("m", echo("m"))]))
    reader, writer = await asyncio.open_connection("127.0.0.1", stack.fast.port)
    writer.write(b"POST /translate HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
    assert await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3) == b"HTTP/1.1 100 Continue\r\n\r\n"
    writer.write(b"abc")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
    assert head.startswith(b"HTTP/1.1 200 OK")
    writer.close()
    two = (b"GET /languages HTTP/1.1\r\nHost: x\r\n\r\n" b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
           b"GET /languages HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")  # fmt: skip
    got = await _raw(stack.fast.port, two, b'"method": "GET"', timeout=3)
    reader, writer = await asyncio.open_connection("127.0.0.1", stack.fast.port)
    writer.write(two)
    got = await asyncio.wait_for(reader.read(), 3)  # the server closes after the third
    writer.close()
    assert got.count(b"HTTP/1.1 200 OK") == 3
    assert got.index(b'"upstream": "m"') < got.index(b'"alive"') < got.rindex(b'"upstream": "m"')
    bad = await _raw(stack.fast.port, b"NOT HTTP\r\n\r\n", b"}")
    assert bad.startswith(b"HTTP/1.1 400") and b"malformed" in bad


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority.ephemeral("voxmesh.local")


async def test_mtls_upstream_with_mesh_contexts(ca: CertificateAuthority, tmp_path: Path) -> None:
    gw_id, worker_id = spiffe_id("voxmesh.local", "gateway"), spiffe_id("voxmesh.local", "worker-tts")
    ident = {
        n: issue_identity(ca, n).write(tmp_path / n).identity for n in (gw_id.name, worker_id.name, "other")
    }

    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"upstream": "tls"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", hello)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sctx = server_context(ident[worker_id.name], ca.trust_anchor_pem, [gw_id])
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=sctx)
    await site.start()
    url = f"https://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    try:
        # (client identity, server identity expected, status, connections made). TLS 1.3: a client the
        # server refuses finishes its handshake first and sees the close on its first read (RESET).
        cases = [(gw_id.name, worker_id, 200, 1), ("other", worker_id, 502, 2),
                 (gw_id.name, spiffe_id("voxmesh.local", "someone-else"), 502, 0)]  # fmt: skip
        for who, expect, want, connects in cases:
            ctx = client_context(ident[who], ca.trust_anchor_pem, [expect])
            settings = Settings()
            settings.gateway.retry_max_attempts = 1
            dp = DataPlane(settings.gateway, ssl=ctx)
            await dp.start()
            dp.update("tts", Reset([Endpoint("w", url)]))
            gw = Gateway(settings, dp, Catalog(kinds={"tts": "tts"}))
            fast = await start_fast_gateway(gw, build_gateway_app(gw), "127.0.0.1", 0)
            try:
                async with aiohttp.ClientSession() as s:
                    for _ in range(2):
                        async with s.post(f"http://127.0.0.1:{fast.port}/v1/audio/speech", json=SPEECH) as r:
                            assert r.status == want, (who, expect)
                            body = await r.json()
                            assert (
                                body.get("upstream") == "tls"
                                if want == 200
                                else body["error"]["type"] == "upstream_error"
                            )
                assert dp.pool is not None and dp.pool.connects == connects
            finally:
                await fast.close(drain_s=1.0)
                await dp.close()
    finally:
        await runner.cleanup()
