"""The data plane over mTLS: it uses the SSLContext it is given, and nothing else."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from voxmesh.gateway.balancer.pool import Endpoint, Reset
from voxmesh.gateway.dataplane import DataPlane
from voxmesh.gateway.echo_upstream import build_app
from voxmesh.settings import GatewaySettings


def _cert(name: str, issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None, *, ca: bool = False,
          san: x509.GeneralName | None = None) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer[0].subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if san is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName([san]), critical=False)
    return builder.sign(issuer[1] if issuer else key, hashes.SHA256()), key


def _write(path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> tuple[str, str]:
    crt, pem = path.with_suffix(".crt"), path.with_suffix(".key")
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))  # fmt: skip
    return str(crt), str(pem)


@pytest.fixture
async def mtls_upstream(tmp_path: Path) -> AsyncIterator[tuple[str, ssl.SSLContext, ssl.SSLContext]]:
    """An upstream that requires a client certificate from the CA; the gateway's good and bad contexts."""
    ca = _cert("voxmesh test CA", None, ca=True)
    server = _cert("worker", ca, san=x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    client = _cert("gateway", ca, san=x509.UniformResourceIdentifier("spiffe://voxmesh.local/gateway"))
    rogue_ca = _cert("rogue CA", None, ca=True)
    rogue = _cert("gateway", rogue_ca)
    ca_file, _ = _write(tmp_path / "ca", *ca)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=ca_file)
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    server_ctx.load_cert_chain(*_write(tmp_path / "server", *server))
    good = ssl.create_default_context(cafile=ca_file)
    good.load_cert_chain(*_write(tmp_path / "client", *client))
    bad = ssl.create_default_context(cafile=ca_file)
    bad.load_cert_chain(*_write(tmp_path / "rogue", *rogue))
    runner = web.AppRunner(build_app("tls-worker"), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_ctx)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"https://127.0.0.1:{port}", good, bad
    await runner.cleanup()


async def _through(dp: DataPlane, url: str) -> tuple[int, dict[str, object]]:
    await dp.start()
    dp.update("tts", Reset([Endpoint("w", url)]))

    async def handle(request: web.Request) -> web.StreamResponse:
        return await dp.forward(request, model="tts", path=request.path_qs, body=await request.read())

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with aiohttp.ClientSession() as s, s.post(f"http://127.0.0.1:{port}/v1/x", data=b"{}") as r:
            return r.status, json.loads(await r.read())
    finally:
        await runner.cleanup()
        await dp.close()


async def test_forwards_over_mtls_with_the_given_context(mtls_upstream) -> None:  # type: ignore[no-untyped-def]
    url, good, _ = mtls_upstream
    status, body = await _through(DataPlane(GatewaySettings.model_validate({}), ssl=good), url)
    assert status == 200 and body["upstream"] == "tls-worker"


@pytest.mark.parametrize("which", ["rogue client certificate", "no context (system CAs, no client cert)"])
async def test_wrong_or_missing_identity_is_a_502(mtls_upstream, which: str) -> None:  # type: ignore[no-untyped-def]
    url, _, bad = mtls_upstream
    ctx = bad if which.startswith("rogue") else None
    status, body = await _through(
        DataPlane(GatewaySettings.model_validate({"retry_max_attempts": 1}), ssl=ctx), url
    )
    assert status == 502 and body["error"]["type"] == "upstream_error"  # type: ignore[index]
