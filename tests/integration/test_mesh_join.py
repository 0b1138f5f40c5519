"""Join and renew over real HTTPS on loopback: gateway bootstrap server + worker-side client."""

from __future__ import annotations

import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from voxmesh.clock import FakeClock
from voxmesh.errors import ConfigError, Forbidden, Unauthorized, UpstreamError
from voxmesh.mesh.ca import CertificateAuthority
from voxmesh.mesh.certs import generate_key, issue_identity, make_csr, read_identity, spiffe_id
from voxmesh.mesh.join import JoinAuthority, _gateway_context, _post, join, remote_renewer, setup_join_routes
from voxmesh.mesh.tls import ReloadableIdentity, bootstrap_server_context, local_renewer, peer_identity
from voxmesh.mesh.tokens import FileTokenStore

TD = "voxmesh.local"
GATEWAY = spiffe_id(TD, "gateway")


@dataclass
class Gateway:
    url: str
    authority: JoinAuthority
    ident: ReloadableIdentity
    clock: FakeClock


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    ca = CertificateAuthority.load_or_create(tmp_path / "gw" / "ca", TD)
    ident = await ReloadableIdentity.load_or_issue(tmp_path / "gw" / "id", local_renewer(ca, "gateway"))
    clock = FakeClock(time.time())  # token expiry only; certificates use real time
    authority = JoinAuthority(ca, FileTokenStore(tmp_path / "gw" / "join-tokens.json"), clock=clock)
    app = web.Application()
    setup_join_routes(app, authority)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ident.bootstrap_server_context())
    await site.start()
    try:
        yield Gateway(f"https://127.0.0.1:{site.port}", authority, ident, clock)
    finally:
        await runner.cleanup()


async def test_join_writes_a_working_identity_and_the_token_is_single_use(gateway: Gateway, tmp_path: Path) -> None:
    tok = gateway.authority.mint(name="worker-a")
    paths = await join(gateway.url, tok.token, tok.fingerprint, "worker-a", tmp_path / "wa", hosts=["10.9.0.2"])
    issued = read_identity(paths.directory)
    assert issued is not None and issued.spiffe_id == spiffe_id(TD, "worker-a")
    assert paths.trust_anchor.read_bytes() == gateway.authority.ca.trust_anchor_pem
    with pytest.raises(Forbidden, match="already used") as err:
        await join(gateway.url, tok.token, tok.fingerprint, "worker-a", tmp_path / "again")
    assert err.value.status == 403
    assert not (tmp_path / "again" / "identity.pem").exists()


async def test_expired_token_is_refused_with_401(gateway: Gateway, tmp_path: Path) -> None:
    tok = gateway.authority.mint(ttl_s=30)
    gateway.clock.advance(31)
    with pytest.raises(Unauthorized, match="expired at") as err:
        await join(gateway.url, tok.token, tok.fingerprint, "worker-a", tmp_path / "wa")
    assert err.value.status == 401


async def test_wrong_fingerprint_stops_before_the_token_is_sent(gateway: Gateway, tmp_path: Path) -> None:
    tok = gateway.authority.mint()
    with pytest.raises(ConfigError, match="not the pinned"):
        await join(gateway.url, tok.token, "sha256:" + "0" * 64, "worker-a", tmp_path / "wa")
    paths = await join(gateway.url, tok.token, tok.fingerprint, "worker-a", tmp_path / "wa")  # token unspent
    assert paths.identity.exists()


async def test_joined_worker_renews_over_mtls_and_serves_the_gateway(gateway: Gateway, tmp_path: Path) -> None:
    tok = gateway.authority.mint()
    key_dir = tmp_path / "wb"
    await join(gateway.url, tok.token, tok.fingerprint, "worker-b", key_dir)
    ident = await ReloadableIdentity.load_or_issue(key_dir, remote_renewer(gateway.url, key_dir))
    before = ident.current.cert
    await ident.rotate()
    assert ident.current.cert != before and ident.spiffe_id == spiffe_id(TD, "worker-b")

    async def whoami(request: web.Request) -> web.Response:
        return web.Response(text=str(peer_identity(request.transport)))

    app = web.Application()
    app.router.add_get("/whoami", whoami)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ident.server_context([GATEWAY]))
    await site.start()
    try:
        ctx = gateway.ident.client_context([ident.spiffe_id])
        async with aiohttp.ClientSession() as s, s.get(f"https://127.0.0.1:{site.port}/whoami", ssl=ctx) as r:
            assert r.status == 200 and await r.text() == str(GATEWAY)
    finally:
        await runner.cleanup()


async def test_renew_without_a_client_certificate_is_401(gateway: Gateway) -> None:
    ctx = _gateway_context(gateway.authority.ca.trust_anchor_pem, GATEWAY, None)
    body = {"csr_pem": make_csr(generate_key(), "x").decode()}
    with pytest.raises(Unauthorized, match="current certificate"):
        await _post(gateway.url + "/mesh/renew", ctx, body, 5.0)


async def test_join_refuses_a_gateway_with_another_identity(gateway: Gateway, tmp_path: Path) -> None:
    """A member of the mesh (not the gateway) serving the join API does not get the token."""
    tok = gateway.authority.mint()
    imposter_ident = await ReloadableIdentity.load_or_issue(
        tmp_path / "imp", local_renewer(gateway.authority.ca, "worker-z")
    )
    app = web.Application()
    setup_join_routes(app, gateway.authority)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=imposter_ident.bootstrap_server_context())
    await site.start()
    try:
        with pytest.raises(UpstreamError, match=r"failed verification.*worker-z is not allowed"):
            await join(f"https://127.0.0.1:{site.port}", tok.token, tok.fingerprint, "worker-a", tmp_path / "x")
    finally:
        await runner.cleanup()
    assert gateway.authority.store.get(tok.token.split(".")[1]).used_at is None  # type: ignore[union-attr]


def test_bootstrap_context_is_server_auth_with_optional_client_cert(tmp_path: Path) -> None:
    ca = CertificateAuthority.ephemeral(TD)
    ctx = bootstrap_server_context(issue_identity(ca, "gateway").write(tmp_path).identity, ca.trust_anchor_pem)
    assert ctx.verify_mode == ssl.CERT_OPTIONAL and ctx.allowed_peers is None
