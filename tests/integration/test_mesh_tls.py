"""mTLS between a gateway-style client and a worker-style aiohttp server on loopback.

Runs on both asyncio's and uvloop's SSL transports: the identity check lives in the
SSLObject hook that both call (see voxmesh.mesh.tls).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import uvloop
from aiohttp import web

from voxmesh.mesh.ca import CertificateAuthority
from voxmesh.mesh.certs import issue_identity, spiffe_id
from voxmesh.mesh.tls import ReloadableIdentity, client_context, local_renewer, peer_identity, server_context

TD = "voxmesh.local"
GATEWAY = spiffe_id(TD, "gateway")
WORKER = spiffe_id(TD, "worker-tts-en")


@dataclass
class Worker:
    url: str
    seen: list[tuple[str | None, int]] = field(default_factory=list)  # (peer identity, client serial)


@contextlib.asynccontextmanager
async def _serve(ctx: ssl.SSLContext) -> AsyncIterator[Worker]:
    worker = Worker(url="")

    async def whoami(request: web.Request) -> web.Response:
        ssl_obj = request.transport.get_extra_info("ssl_object") if request.transport else None
        der = ssl_obj.getpeercert(binary_form=True) if ssl_obj else None
        from cryptography import x509

        serial = x509.load_der_x509_certificate(der).serial_number if der else 0
        ident = peer_identity(request.transport)
        worker.seen.append((str(ident) if ident else None, serial))
        return web.json_response({"peer": str(ident)})

    app = web.Application()
    app.router.add_get("/whoami", whoami)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
    await site.start()
    worker.url = f"https://127.0.0.1:{site.port}/whoami"
    try:
        yield worker
    finally:
        await runner.cleanup()


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority.ephemeral(TD)


def _ident_file(ca: CertificateAuthority, tmp: Path, name: str) -> Path:
    return issue_identity(ca, name).write(tmp / name).identity


@pytest.fixture
async def worker(ca: CertificateAuthority, tmp_path: Path) -> AsyncIterator[Worker]:
    ctx = server_context(_ident_file(ca, tmp_path, WORKER.name), ca.trust_anchor_pem, [GATEWAY])
    async with _serve(ctx) as w:
        yield w


async def _get(url: str, ctx: ssl.SSLContext | bool) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.get(url, ssl=ctx) as resp:
        assert resp.status == 200
        body: dict[str, Any] = await resp.json()
        return body


async def test_gateway_identity_is_served(worker: Worker, ca: CertificateAuthority, tmp_path: Path) -> None:
    ctx = client_context(_ident_file(ca, tmp_path, "gateway"), ca.trust_anchor_pem, [WORKER])
    assert await _get(worker.url, ctx) == {"peer": str(GATEWAY)}
    assert worker.seen[0][0] == str(GATEWAY)


async def test_plain_http_is_refused(worker: Worker) -> None:
    with pytest.raises(aiohttp.ClientError):
        await _get(worker.url.replace("https://", "http://"), False)
    assert worker.seen == []


async def test_tls_client_without_certificate_is_refused(worker: Worker, ca: CertificateAuthority) -> None:
    ctx = ssl.create_default_context(cadata=ca.trust_anchor_pem.decode())
    ctx.check_hostname = False
    with pytest.raises(aiohttp.ClientError):
        await _get(worker.url, ctx)
    assert worker.seen == []


async def test_certificate_from_another_ca_is_refused(worker: Worker, ca: CertificateAuthority, tmp_path: Path) -> None:
    rogue = CertificateAuthority.ephemeral(TD)  # same trust domain, same name: only the anchor differs
    ident = _ident_file(rogue, tmp_path, "gateway")
    ctx = client_context(ident, ca.trust_anchor_pem, [WORKER])
    with pytest.raises(aiohttp.ClientError):
        await _get(worker.url, ctx)
    assert worker.seen == []


async def test_valid_certificate_of_another_identity_is_refused(
    worker: Worker, ca: CertificateAuthority, tmp_path: Path
) -> None:
    ctx = client_context(_ident_file(ca, tmp_path, "worker-mt"), ca.trust_anchor_pem, [WORKER])
    with pytest.raises(aiohttp.ClientError):
        await _get(worker.url, ctx)
    assert worker.seen == []


async def test_that_client_passes_where_its_identity_is_allowed(ca: CertificateAuthority, tmp_path: Path) -> None:
    """Control for the test above: the refused certificate is fine except for its identity."""
    mt = spiffe_id(TD, "worker-mt")
    ctx = server_context(_ident_file(ca, tmp_path, WORKER.name), ca.trust_anchor_pem, [GATEWAY, mt])
    async with _serve(ctx) as w:
        client = client_context(_ident_file(ca, tmp_path, mt.name), ca.trust_anchor_pem, [WORKER])
        assert await _get(w.url, client) == {"peer": str(mt)}


async def test_client_refuses_a_server_of_an_unexpected_identity(
    worker: Worker, ca: CertificateAuthority, tmp_path: Path
) -> None:
    ctx = client_context(_ident_file(ca, tmp_path, "gateway"), ca.trust_anchor_pem, [spiffe_id(TD, "worker-mt")])
    with pytest.raises(aiohttp.ClientConnectorCertificateError, match="worker-tts-en is not allowed"):
        await _get(worker.url, ctx)
    assert worker.seen == []


async def test_requests_keep_succeeding_across_rotations(ca: CertificateAuthority, tmp_path: Path) -> None:
    """3 s certificates rotated at 2 s on both sides while two clients hammer the worker:
    one keeps its connection alive (old certificates), one reconnects every request (new ones)."""
    server_ident = await ReloadableIdentity.load_or_issue(
        tmp_path / "w", local_renewer(ca, WORKER.name, ttl_s=3)
    )
    client_ident = await ReloadableIdentity.load_or_issue(tmp_path / "g", local_renewer(ca, "gateway", ttl_s=3))
    server_ctx = server_ident.server_context([GATEWAY])
    client_ctx = client_ident.client_context([WORKER])
    server_ident.start()
    client_ident.start()
    ok, failures, server_serials = 0, [], set()
    try:
        async with _serve(server_ctx) as worker:

            async def hammer(force_close: bool, until: float) -> None:
                nonlocal ok
                conn = aiohttp.TCPConnector(ssl=client_ctx, force_close=force_close, limit=1)
                async with aiohttp.ClientSession(connector=conn) as session:
                    while time.monotonic() < until:
                        try:
                            async with session.get(worker.url) as resp:
                                assert resp.status == 200, resp.status
                                assert (await resp.json())["peer"] == str(GATEWAY)
                                ok += 1
                        except (aiohttp.ClientError, AssertionError) as exc:
                            failures.append(repr(exc))
                        await asyncio.sleep(0.005)

            async def probe(until: float) -> None:
                """Fresh handshakes only, to see which certificate the server presents."""
                port = int(worker.url.split(":")[2].split("/")[0])
                while time.monotonic() < until:
                    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_ctx)
                    server_serials.add(writer.get_extra_info("ssl_object").getpeercert(binary_form=True))
                    writer.close()
                    await writer.wait_closed()
                    await asyncio.sleep(0.1)

            until = time.monotonic() + 4.5
            await asyncio.gather(hammer(False, until), hammer(True, until), probe(until))
            client_serials = {serial for _, serial in worker.seen}
    finally:
        await server_ident.stop()
        await client_ident.stop()
    print(f"rotation test: {ok} requests ok, {len(failures)} failed, rotations server={server_ident.rotations} "
          f"client={client_ident.rotations}, server certs seen={len(server_serials)}, client certs seen={len(client_serials)}")
    assert failures == []
    assert ok > 50
    assert server_ident.rotations >= 1 and client_ident.rotations >= 1
    assert len(server_serials) >= 2, "the reconnecting client never saw the rotated server certificate"
    assert len(client_serials) >= 2, "the server never saw the rotated client certificate"


def test_the_same_checks_hold_on_uvloop(ca: CertificateAuthority, tmp_path: Path) -> None:
    """uvloop has its own SSL transport; it must call the same SSLObject hook."""

    async def scenario() -> None:
        ctx = server_context(_ident_file(ca, tmp_path, WORKER.name), ca.trust_anchor_pem, [GATEWAY])
        async with _serve(ctx) as w:
            await test_gateway_identity_is_served(w, ca, tmp_path)
            w.seen.clear()
            await test_plain_http_is_refused(w)
            await test_tls_client_without_certificate_is_refused(w, ca)
            await test_certificate_from_another_ca_is_refused(w, ca, tmp_path)
            await test_valid_certificate_of_another_identity_is_refused(w, ca, tmp_path)
            await test_client_refuses_a_server_of_an_unexpected_identity(w, ca, tmp_path)
            assert isinstance(asyncio.get_running_loop(), uvloop.Loop)

    uvloop.run(scenario())
