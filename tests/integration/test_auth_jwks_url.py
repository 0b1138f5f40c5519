"""JWKS from a URL served by a real local aiohttp server: cached, refetched when the
identity provider rotates to a key with a new kid, and a refetch at most once per interval."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from tests.authkit import AUDIENCE, ISSUER, Signer

from voxmesh.auth.errors import Unauthenticated
from voxmesh.auth.guard import Call, Guard
from voxmesh.auth.jwt import JwksCache, JwtVerifier
from voxmesh.engines.registry import create_engine
from voxmesh.settings import Settings


class Idp:
    def __init__(self) -> None:
        self.signer = Signer(kid="2026-01")
        self.hits = 0
        self.url = ""

    async def jwks(self, request: web.Request) -> web.Response:
        self.hits += 1
        return web.json_response(self.signer.jwks())


@pytest.fixture
async def idp() -> AsyncIterator[Idp]:
    state = Idp()
    app = web.Application()
    app.router.add_get("/.well-known/jwks.json", state.jwks)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/.well-known/jwks.json"  # type: ignore[union-attr]
    yield state
    await runner.cleanup()


def _call(token: str) -> Call:
    return Call("POST", "/v1/audio/speech", "/v1/audio/speech", "127.0.0.1", f"Bearer {token}")


async def test_jwks_url_rotation(idp: Idp, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, auth={"mode": "jwt", "jwks_url": idp.url, "issuer": ISSUER,
                                                 "audience": AUDIENCE, "jwks_refresh_min_s": 0.5})
    now = [0.0]  # the cache's own clock: the real IdP is fetched over HTTP, time is ours

    def clock() -> float:
        return now[0]

    cfg = settings.auth
    jwks = JwksCache(url=cfg.jwks_url, cache_s=cfg.jwks_cache_s, refresh_min_s=cfg.jwks_refresh_min_s, clock=clock)
    guard = Guard(settings, jwt=JwtVerifier(cfg, jwks))
    for alg in ("RS256", "ES256", "RS256"):
        assert (await guard.check(_call(idp.signer.token(alg=alg, iss=ISSUER, aud=AUDIENCE)))).tenant == "acme"
    assert idp.hits == 1  # one fetch serves every later token
    old = idp.signer
    idp.signer = Signer(kid="2026-02")  # rotation: the IdP now publishes only the new key
    new_token = idp.signer.token(iss=ISSUER, aud=AUDIENCE)
    with pytest.raises(Unauthenticated):
        await guard.check(_call(new_token))  # unknown kid, but the last fetch was < 0.5 s ago
    assert idp.hits == 1
    now[0] += 0.6
    assert (await guard.check(_call(new_token))).tenant == "acme"  # unknown kid: refetched
    assert idp.hits == 2
    with pytest.raises(Unauthenticated):
        # a token never seen before (an identical one would be in the verified-token cache, by design)
        await guard.check(_call(old.token(iss=ISSUER, aud=AUDIENCE, scope="tts:speak mt:translate")))
    for i in range(20):  # made-up kids do not hammer the IdP
        with pytest.raises(Unauthenticated):
            await guard.check(_call(idp.signer.token(kid=f"made-up-{i}", iss=ISSUER, aud=AUDIENCE)))
    assert idp.hits == 2


async def test_unreachable_jwks_url_is_a_401_not_a_500(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, auth={"mode": "jwt", "jwks_url": "http://127.0.0.1:9/jwks.json"})
    with pytest.raises(Unauthenticated) as info:
        await Guard(settings).check(_call(Signer().token()))
    assert info.value.reason == "unknown_kid"


def test_remote_engine_via_the_gateway_reads_the_internal_key_from_its_file(tmp_path: Path) -> None:
    (tmp_path / "internal.key").write_text("f" * 64)
    engine = create_engine("remote", {"base_url": "http://127.0.0.1:1", "model": "m",
                                      "internal_key_file": str(tmp_path / "internal.key")})
    assert engine.api_key == "vxi_" + "f" * 64
