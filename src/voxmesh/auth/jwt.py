"""JWT bearer tokens (PyJWT): RS256/ES256 from a JWKS (file or URL), HS256 with a dev secret.

Checks: the signature with the key the header's ``alg`` and ``kid`` select (an HS256 token is
never checked against a JWKS key or the reverse), ``exp`` (required) and ``nbf`` with
``auth.leeway_s``, ``iss`` and ``aud`` when configured, a tenant in ``auth.tenant_claim``.
Scopes come from ``scope`` (space-separated) or ``scp`` (a list or a string).

:class:`JwksCache` keeps the keys by ``kid``. A URL is refetched after ``jwks_cache_s`` and
when a token names an unknown ``kid`` (key rotation), at most once per ``jwks_refresh_min_s``
so a flood of made-up kids cannot hammer the identity provider. A file is reread when its
mtime changes (looked at once a second, and at once for an unknown kid). The fetcher and the clock are injected (tests serve a
JWKS from a local server).

A verified token's principal is cached by the token's SHA-256 for ``auth.token_cache_s``
(never past its ``exp``; 10,000 entries at most), so a client repeating its bearer pays the
signature check once. Limit: a token signed by a key the JWKS has since dropped keeps working
until its cache entry ends.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import jwt
from jwt import PyJWK

from voxmesh.auth.errors import Unauthenticated
from voxmesh.auth.principal import Principal
from voxmesh.auth.scopes import parse_scopes
from voxmesh.clock import Clock
from voxmesh.errors import ConfigError
from voxmesh.settings import AuthSettings

__all__ = ["TENANT_RE", "JwksCache", "JwtVerifier", "fetch_url"]

log = logging.getLogger(__name__)

TENANT_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_ASYMMETRIC = frozenset({"RS256", "ES256"})
Fetch = Callable[[str], Awaitable[bytes]]


async def fetch_url(url: str) -> bytes:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session, session.get(url) as resp:
        resp.raise_for_status()
        return await resp.read()


def _parse_jwks(raw: bytes, where: str) -> dict[str, PyJWK]:
    try:
        data = json.loads(raw)
        keys = data["keys"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{where} is not a JWKS document ({{\"keys\": [...]}})") from exc
    out: dict[str, PyJWK] = {}
    for item in keys:
        if not isinstance(item, dict) or item.get("use", "sig") != "sig":
            continue
        try:
            key = PyJWK(item)
        except (jwt.PyJWKError, jwt.InvalidKeyError) as exc:
            log.warning("skipping a key of %s: %s", where, exc)
            continue
        if key.algorithm_name in _ASYMMETRIC:
            out[str(item.get("kid", ""))] = key
    return out


class JwksCache:
    """Public keys by ``kid`` from a JWKS file or URL (see the module docstring)."""

    def __init__(self, *, path: Path | None = None, url: str | None = None, cache_s: float = 600.0,
                 refresh_min_s: float = 10.0, fetch: Fetch = fetch_url, clock: Clock = time.monotonic) -> None:
        self.path, self.url = path, url
        self.cache_s, self.refresh_min_s = cache_s, refresh_min_s
        self._fetch, self._clock = fetch, clock
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at: float | None = None
        self._mtime: float | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0  # URL fetches made (for tests and metrics)

    def _load_file(self, kid: str) -> None:
        assert self.path is not None
        now = self._clock()
        if kid in self._keys and self._fetched_at is not None and now - self._fetched_at < 1.0:
            return  # a known kid: look at the file once a second; an unknown one: now (a stat)
        self._fetched_at = now
        try:
            mtime = self.path.stat().st_mtime
            if mtime != self._mtime:
                self._keys = _parse_jwks(self.path.read_bytes(), str(self.path))
                self._mtime = mtime
        except (OSError, ValueError) as exc:
            log.warning("cannot read JWKS file %s: %s", self.path, exc)

    async def _refetch(self) -> None:
        assert self.url is not None
        self._fetched_at = self._clock()
        self.fetches += 1
        try:
            self._keys = _parse_jwks(await self._fetch(self.url), self.url)
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            log.warning("cannot fetch JWKS from %s: %s", self.url, exc)

    def _needs_fetch(self, kid: str) -> bool:
        if self._fetched_at is None:
            return True
        age = self._clock() - self._fetched_at
        return age >= self.cache_s or (kid not in self._keys and age >= self.refresh_min_s)

    async def get(self, kid: str) -> PyJWK | None:
        if self.path is not None:
            self._load_file(kid)
            return self._keys.get(kid)
        if self.url is None:
            return None
        if self._needs_fetch(kid):
            async with self._lock:
                if self._needs_fetch(kid):  # another request may have refetched meanwhile
                    await self._refetch()
        return self._keys.get(kid)


class JwtVerifier:
    """Verify a bearer JWT and turn its claims into a :class:`Principal`."""

    def __init__(self, cfg: AuthSettings, jwks: JwksCache | None = None, *, clock: Clock = time.time) -> None:
        self.cfg = cfg
        self._clock = clock
        if jwks is None and (cfg.jwks_path is not None or cfg.jwks_url is not None):
            jwks = JwksCache(path=cfg.jwks_path, url=cfg.jwks_url, cache_s=cfg.jwks_cache_s,
                             refresh_min_s=cfg.jwks_refresh_min_s)
        self.jwks = jwks
        self._secret = cfg.hs256_secret.encode() if cfg.hs256_secret else None
        self._cache: dict[bytes, tuple[float, Principal]] = {}  # sha256(token) -> (until, principal)
        if self.jwks is None and self._secret is None:
            raise ConfigError(
                f"auth.mode {cfg.mode} needs a key: set VOXMESH_AUTH__JWKS_PATH, VOXMESH_AUTH__JWKS_URL "
                "or VOXMESH_AUTH__HS256_SECRET")

    async def _key(self, token: str) -> tuple[Any, str]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError as exc:
            raise Unauthenticated("the bearer token is not a well-formed JWT", reason="malformed") from exc
        alg = header.get("alg")
        if alg == "HS256" and self._secret is not None:
            return self._secret, alg
        if alg in _ASYMMETRIC and self.jwks is not None:
            kid = str(header.get("kid", ""))
            key = await self.jwks.get(kid)
            if key is None or key.algorithm_name != alg:
                raise Unauthenticated(f"no key with kid {kid!r} for {alg} in the JWKS", reason="unknown_kid")
            return key, alg
        raise Unauthenticated(f"JWT algorithm {alg!r} is not accepted here", reason="algorithm")

    async def verify(self, token: str) -> Principal:
        digest = hashlib.sha256(token.encode()).digest()
        hit = self._cache.get(digest)
        if hit is not None:
            if hit[0] > self._clock():
                return hit[1]
            del self._cache[digest]
        principal, exp = await self._verify(token)
        if self.cfg.token_cache_s > 0:
            if len(self._cache) >= 10_000:
                self._cache.clear()
            self._cache[digest] = (min(exp, self._clock() + self.cfg.token_cache_s), principal)
        return principal

    async def _verify(self, token: str) -> tuple[Principal, float]:
        key, alg = await self._key(token)
        cfg = self.cfg
        try:
            claims: dict[str, Any] = jwt.decode(
                token, key, algorithms=[alg], audience=cfg.audience, issuer=cfg.issuer, leeway=cfg.leeway_s,
                options={"require": ["exp"], "verify_aud": cfg.audience is not None},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("the JWT has expired", reason="expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise Unauthenticated("the JWT is not valid yet (nbf)", reason="not_yet_valid") from exc
        except jwt.InvalidSignatureError as exc:
            raise Unauthenticated("the JWT signature does not verify", reason="signature") from exc
        except jwt.InvalidIssuerError as exc:
            raise Unauthenticated("the JWT issuer (iss) is not the one configured", reason="issuer") from exc
        except jwt.InvalidAudienceError as exc:
            raise Unauthenticated("the JWT audience (aud) is not this API", reason="audience") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthenticated(f"the JWT lacks the {exc.claim!r} claim", reason="claims") from exc
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated("the JWT is not valid", reason="malformed") from exc
        tenant = claims.get(cfg.tenant_claim)
        if not isinstance(tenant, str) or not TENANT_RE.match(tenant):
            raise Unauthenticated(
                f"the JWT needs a {cfg.tenant_claim!r} claim naming a tenant (a-z, 0-9, _ and -)", reason="tenant")
        scopes = parse_scopes(claims.get("scope")) | parse_scopes(claims.get("scp"))
        subject = claims.get("sub") or claims.get("client_id") or "-"
        principal = Principal(tenant=tenant, subject=str(subject)[:200], scopes=scopes, credential="jwt")
        return principal, float(claims["exp"])
