"""JWT verification: keys by alg and kid, claims, leeway, tenants, scopes, JWKS refresh."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from tests.authkit import AUDIENCE, HS_SECRET, ISSUER, Signer

from voxmesh.auth.errors import Unauthenticated
from voxmesh.auth.jwt import JwksCache, JwtVerifier
from voxmesh.errors import ConfigError
from voxmesh.settings import AuthSettings

SIGNER = Signer()


def _cfg(tmp_path: Path, **kw: object) -> AuthSettings:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(SIGNER.jwks()))
    base: dict[str, object] = {"mode": "jwt", "jwks_path": path, "issuer": ISSUER, "audience": AUDIENCE,
                               "hs256_secret": HS_SECRET, "leeway_s": 5}
    return AuthSettings.model_validate({**base, **kw})


async def _reason(v: JwtVerifier, token: str) -> str:
    with pytest.raises(Unauthenticated) as info:
        await v.verify(token)
    assert token not in info.value.message
    return info.value.reason


async def test_valid_tokens_of_each_algorithm(tmp_path: Path) -> None:
    v = JwtVerifier(_cfg(tmp_path))
    for alg in ("RS256", "ES256", "HS256"):
        p = await v.verify(SIGNER.token(alg=alg, scope="tts:speak mt:translate"))
        assert (p.tenant, p.subject, p.credential) == ("acme", "user-1", "jwt")
        assert p.scopes == {"tts:speak", "mt:translate"}


async def test_scp_claim_as_list_or_string(tmp_path: Path) -> None:
    v = JwtVerifier(_cfg(tmp_path))
    assert (await v.verify(SIGNER.token(claim="scp", scope=["jobs:read", "jobs:write"]))).scopes == {"jobs:read", "jobs:write"}
    assert (await v.verify(SIGNER.token(claim="scp", scope="metrics"))).scopes == {"metrics"}


async def test_each_bad_token_has_its_reason(tmp_path: Path) -> None:
    v = JwtVerifier(_cfg(tmp_path))
    other = Signer()  # same kid, different key: a forged signature
    assert await _reason(v, other.token()) == "signature"
    assert await _reason(v, SIGNER.token(exp_in=-60)) == "expired"
    assert await _reason(v, SIGNER.token(nbf_in=120)) == "not_yet_valid"
    assert await _reason(v, SIGNER.token(iss="https://evil.test")) == "issuer"
    assert await _reason(v, SIGNER.token(aud="someone-else")) == "audience"
    assert await _reason(v, SIGNER.token(tenant=None)) == "tenant"
    assert await _reason(v, SIGNER.token(tenant="Bad Tenant!")) == "tenant"
    assert await _reason(v, SIGNER.token(kid="nope")) == "unknown_kid"
    assert await _reason(v, "abc.def.ghi") == "malformed"
    no_exp = pyjwt.encode({"tenant": "acme", "iss": ISSUER, "aud": AUDIENCE}, HS_SECRET, algorithm="HS256")
    assert await _reason(v, no_exp) == "claims"
    none_alg = pyjwt.encode({"tenant": "acme", "exp": 2**40}, None, algorithm="none")  # type: ignore[arg-type]
    assert await _reason(v, none_alg) == "algorithm"


async def test_leeway(tmp_path: Path) -> None:
    v = JwtVerifier(_cfg(tmp_path, leeway_s=30))
    assert (await v.verify(SIGNER.token(exp_in=-10))).tenant == "acme"
    assert await _reason(v, SIGNER.token(exp_in=-60)) == "expired"


async def test_algorithm_confusion_is_refused(tmp_path: Path) -> None:
    """An HS256 token "signed" with the RSA public key as the HMAC secret must not verify."""
    pem = SIGNER.rsa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    header = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "kid": "k1", "typ": "JWT"}).encode()).rstrip(b"=")
    body = base64.urlsafe_b64encode(json.dumps({"tenant": "acme", "exp": 2**40, "iss": ISSUER, "aud": AUDIENCE}).encode()).rstrip(b"=")
    import hashlib
    import hmac
    sig = base64.urlsafe_b64encode(hmac.new(pem, header + b"." + body, hashlib.sha256).digest()).rstrip(b"=")
    forged = (header + b"." + body + b"." + sig).decode()
    assert await _reason(JwtVerifier(_cfg(tmp_path)), forged) == "signature"
    assert await _reason(JwtVerifier(_cfg(tmp_path, hs256_secret=None)), forged) == "algorithm"
    # an RS256 token whose kid names the EC key: the kid's key is for another algorithm
    assert await _reason(JwtVerifier(_cfg(tmp_path)), SIGNER.token(alg="RS256", kid="k1-ec")) == "unknown_kid"


async def test_tenant_claim_is_configurable(tmp_path: Path) -> None:
    v = JwtVerifier(_cfg(tmp_path, tenant_claim="org"))
    assert (await v.verify(SIGNER.token(tenant=None, org="globex"))).tenant == "globex"


def test_a_jwt_mode_without_any_key_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="HS256_SECRET"):
        JwtVerifier(AuthSettings(mode="jwt"))


async def test_jwks_url_refetched_on_unknown_kid_at_most_once_per_interval() -> None:
    now = [0.0]
    current = [Signer(kid="old")]
    served: list[str] = []

    async def fetch(url: str) -> bytes:
        served.append(url)
        return json.dumps(current[0].jwks()).encode()

    cache = JwksCache(url="https://idp.test/jwks", cache_s=600, refresh_min_s=10, fetch=fetch, clock=lambda: now[0])
    v = JwtVerifier(AuthSettings(mode="jwt", issuer=ISSUER, audience=AUDIENCE, token_cache_s=0), cache)
    assert (await v.verify(current[0].token())).tenant == "acme"
    assert (await v.verify(current[0].token())).tenant == "acme"
    assert len(served) == 1  # cached
    rotated = Signer(kid="new")
    current[0] = rotated  # the IdP rotates its key
    now[0] = 3.0
    assert await _reason(v, rotated.token()) == "unknown_kid"  # too soon since the last fetch
    assert len(served) == 1
    now[0] = 11.0
    assert (await v.verify(rotated.token())).tenant == "acme"  # unknown kid: refetched
    assert len(served) == 2
    for _ in range(5):  # a flood of made-up kids: no refetch within the interval
        await _reason(v, rotated.token(kid="made-up"))
    assert len(served) == 2
    now[0] = 700.0  # the cache ages out: refetched even for a known kid
    await v.verify(rotated.token())
    assert len(served) == 3


async def test_verified_tokens_are_cached_but_never_past_exp(tmp_path: Path) -> None:
    import asyncio
    import os

    cfg = _cfg(tmp_path, hs256_secret=None, leeway_s=0)
    cached, uncached = JwtVerifier(cfg), JwtVerifier(cfg.model_copy(update={"token_cache_s": 0}))
    token = SIGNER.token()
    short = SIGNER.token(exp_in=3)
    for v in (cached, uncached):
        assert (await v.verify(token)).tenant == "acme"
        assert (await v.verify(short)).tenant == "acme"
    assert cfg.jwks_path is not None
    cfg.jwks_path.write_text(json.dumps(Signer(kid="k1").jwks()))  # the key is rotated out
    os.utime(cfg.jwks_path, (1, 1))
    await asyncio.sleep(1.1)  # a known kid's file is looked at once a second
    assert (await cached.verify(token)).tenant == "acme"  # within token_cache_s: not checked again
    assert await _reason(uncached, token) == "signature"
    await asyncio.sleep(2.1)
    assert await _reason(cached, short) in ("expired", "signature")  # the cache ends at exp


async def test_jwks_file_is_reread_when_it_changes(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, hs256_secret=None)
    v = JwtVerifier(cfg)
    rotated = Signer(kid="k2")
    assert await _reason(v, rotated.token()) == "unknown_kid"
    assert cfg.jwks_path is not None
    cfg.jwks_path.write_text(json.dumps(rotated.jwks()))
    import os
    os.utime(cfg.jwks_path, (1, 1))  # a different mtime
    assert (await v.verify(rotated.token())).tenant == "acme"
