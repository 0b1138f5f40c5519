"""Joining the mesh from another host with a one-time token, and renewing over mTLS.

Discovery works like ``kubeadm join --discovery-token-ca-cert-hash``: the operator hands a
worker a token and the trust anchor's fingerprint (``sha256:<hex>`` of its public key). The
worker

1. fetches ``GET /mesh/trust-anchor`` without verification and keeps it only if its
   fingerprint matches the pin (a man in the middle cannot forge that);
2. opens a verified TLS connection to the gateway with that anchor, accepting only the
   gateway identity (``spiffe://<td>/ns/<ns>/sa/gateway``): the token is never sent to
   anyone else;
3. ``POST /mesh/join`` ``{token, csr_pem, name, hosts}``: its private key never leaves the
   host; the answer is ``{cert_chain_pem, trust_anchor_pem, spiffe_id, not_after}``.

Later it renews with ``POST /mesh/renew`` ``{csr_pem, hosts}`` over mTLS with its current
certificate: the gateway issues the identity that certificate proves, nothing else.

Gateway side::

    authority = JoinAuthority(ca, FileTokenStore(data_dir / "mesh" / "join-tokens.json"))
    token = authority.mint(name="worker-tts-en")        # token.token, token.fingerprint
    setup_join_routes(app, authority)                    # served over ident.bootstrap_server_context()

Worker side::

    paths = await join(gateway_url, token, fingerprint, "worker-tts-en", key_dir)
    ident = await ReloadableIdentity.load_or_issue(key_dir, remote_renewer(gateway_url, key_dir))

Errors are voxmesh errors: an unknown or expired token is 401, a reused token, a token bound
to another name or a reserved name (the gateway's) is 403; every message says what to do.
"""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from cryptography import x509

from voxmesh.clock import Clock, wall
from voxmesh.errors import ConfigError, Forbidden, InvalidRequest, Unauthorized, UpstreamError, VoxmeshError
from voxmesh.mesh.ca import CertificateAuthority, ca_trust_domain, spki_fingerprint
from voxmesh.mesh.certs import (
    DEFAULT_NAMESPACE,
    IdentityPaths,
    IssuedIdentity,
    SpiffeId,
    generate_key,
    identity_of,
    issue_from_csr,
    key_pem,
    make_csr,
)
from voxmesh.mesh.tls import MeshSSLContext, Renewer, peer_identity
from voxmesh.mesh.tokens import (
    MemoryTokenStore,
    TokenRecord,
    TokenStore,
    TokenVerdict,
    check,
    new_token,
    split_token,
)

__all__ = [
    "JoinAuthority",
    "JoinToken",
    "join",
    "remote_renewer",
    "setup_join_routes",
]

GATEWAY_NAME = "gateway"
_MAX_HOSTS = 16


@dataclass(frozen=True)
class JoinToken:
    token: str
    fingerprint: str  # the trust anchor pin to hand out with the token
    expires_at: float
    name: str | None


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class JoinAuthority:
    """Mints one-time tokens and signs CSRs for token holders and for renewing members."""

    def __init__(
        self,
        ca: CertificateAuthority,
        store: TokenStore | None = None,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        cert_ttl_s: float | None = None,
        token_ttl_s: float = 3600.0,
        reserved_names: Iterable[str] = (GATEWAY_NAME,),
        clock: Clock = wall,
    ) -> None:
        self.ca = ca
        self.store: TokenStore = store if store is not None else MemoryTokenStore()
        self.namespace = namespace
        self.cert_ttl_s = cert_ttl_s
        self.token_ttl_s = token_ttl_s
        self.reserved = frozenset(reserved_names)
        self.clock = clock

    def mint(self, name: str | None = None, ttl_s: float | None = None) -> JoinToken:
        """A single-use token; with ``name`` it can only obtain that identity."""
        if name is not None:
            self._check_name(name)
        token, record = new_token(self.clock(), self.token_ttl_s if ttl_s is None else ttl_s, name)
        self.store.add(record)
        return JoinToken(token, self.ca.fingerprint, record.expires_at, name)

    def _check_name(self, name: str) -> SpiffeId:
        ident = SpiffeId(self.ca.trust_domain, self.namespace, name)  # validates
        if name in self.reserved:
            raise Forbidden(f"identity name {name!r} is reserved and cannot be obtained by joining", param="name")
        return ident

    def _refuse(self, verdict: TokenVerdict, record: TokenRecord | None, name: str) -> VoxmeshError:
        tid = record.token_id if record else "?"
        if verdict is TokenVerdict.USED and record is not None:
            return Forbidden(
                f"join token {tid} was already used (by {record.used_by!r} at {_iso(record.used_at or 0)}): "
                "tokens are single-use; mint a new one",
                param="token",
            )
        if verdict is TokenVerdict.EXPIRED and record is not None:
            return Unauthorized(f"join token {tid} expired at {_iso(record.expires_at)}: mint a new one", param="token")
        if verdict is TokenVerdict.WRONG_NAME and record is not None:
            return Forbidden(f"join token {tid} is for identity {record.name!r}, not {name!r}", param="name")
        return Unauthorized(
            "join token not recognised: check that it was copied whole, or mint a new one", param="token"
        )

    def redeem(self, token: str, csr_pem: bytes, name: str, hosts: Sequence[str] = ()) -> IssuedIdentity:
        """Check and burn ``token``, then sign ``csr_pem`` for ``name``.

        The token is checked first, the CSR signed next and the token burnt last (atomically
        in the store), so a bad CSR does not waste the token and two racing redeemers cannot
        both get a certificate.
        """
        self._check_name(name)
        parts = split_token(token)
        if parts is None:
            raise Unauthorized("malformed join token: expected vxj1.<id>.<secret>", param="token")
        token_id, secret = parts
        record = self.store.get(token_id)
        verdict = check(record, secret, name, self.clock())
        if verdict is not TokenVerdict.OK:
            raise self._refuse(verdict, record, name)
        issued = issue_from_csr(
            self.ca, csr_pem, name, namespace=self.namespace, hosts=hosts, ttl_s=self.cert_ttl_s
        )
        verdict, record = self.store.consume(token_id, secret, name, self.clock())
        if verdict is not TokenVerdict.OK:
            raise self._refuse(verdict, record, name)
        return issued

    def renew(self, peer: SpiffeId | None, csr_pem: bytes, hosts: Sequence[str] = ()) -> IssuedIdentity:
        """Sign ``csr_pem`` for the identity the caller proved with its current certificate."""
        if peer is None:
            raise Unauthorized("renewal needs the member's current certificate: connect with mTLS")
        if peer.trust_domain != self.ca.trust_domain or peer.namespace != self.namespace:
            raise Forbidden(f"{peer} is not a member of this mesh namespace")
        self._check_name(peer.name)
        return issue_from_csr(self.ca, csr_pem, peer.name, namespace=self.namespace, hosts=hosts, ttl_s=self.cert_ttl_s)


# -- gateway routes -----------------------------------------------------------------------------


def _answer(issued: IssuedIdentity) -> web.Response:
    return web.json_response(
        {
            "cert_chain_pem": issued.chain_pem.decode(),
            "trust_anchor_pem": issued.trust_anchor_pem.decode(),
            "spiffe_id": str(issued.spiffe_id),
            "not_after": issued.not_after,
        }
    )


def _error(exc: VoxmeshError) -> web.Response:
    return web.json_response(exc.to_dict(), status=exc.status)


async def _body(request: web.Request, fields: Iterable[str]) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError as exc:
        raise InvalidRequest("the body must be a JSON object") from exc
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object")
    for field in fields:
        if not isinstance(body.get(field), str) or not body[field]:
            raise InvalidRequest(f"{field} is required and must be a string", param=field)
    return body


def _hosts(request: web.Request, body: dict[str, Any]) -> list[str]:
    hosts = body.get("hosts", [])
    if not isinstance(hosts, list) or len(hosts) > _MAX_HOSTS or not all(isinstance(h, str) for h in hosts):
        raise InvalidRequest(f"hosts must be a list of at most {_MAX_HOSTS} strings", param="hosts")
    return ([request.remote] if request.remote else []) + hosts  # the address we see it at, too


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def setup_join_routes(app: web.Application, authority: JoinAuthority) -> None:
    """Mount ``GET /mesh/trust-anchor``, ``POST /mesh/join`` and ``POST /mesh/renew``.

    Serve them over HTTPS with ``ReloadableIdentity.bootstrap_server_context()`` (server-auth,
    optional client certificate): ``/mesh/renew`` reads the caller's verified identity.
    """

    async def trust_anchor(request: web.Request) -> web.Response:
        return web.Response(body=authority.ca.trust_anchor_pem, content_type="application/x-pem-file")

    async def join_handler(request: web.Request) -> web.Response:
        try:
            body = await _body(request, ("token", "csr_pem", "name"))
            issued = authority.redeem(body["token"], body["csr_pem"].encode(), body["name"], _hosts(request, body))
        except VoxmeshError as exc:
            return _error(exc)
        return _answer(issued)

    async def renew_handler(request: web.Request) -> web.Response:
        try:
            body = await _body(request, ("csr_pem",))
            issued = authority.renew(peer_identity(request.transport), body["csr_pem"].encode(), _hosts(request, body))
        except VoxmeshError as exc:
            return _error(exc)
        return _answer(issued)

    app.router.add_get("/mesh/trust-anchor", trust_anchor)
    app.router.add_post("/mesh/join", join_handler)
    app.router.add_post("/mesh/renew", renew_handler)


# -- worker side --------------------------------------------------------------------------------


def _gateway_context(anchor_pem: bytes, gateway: SpiffeId, identity_file: Path | None) -> MeshSSLContext:
    ctx = MeshSSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False  # the gateway's URI SAN is checked instead
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cadata=anchor_pem.decode())
    if identity_file is not None:
        ctx.load_cert_chain(identity_file)
    ctx.allowed_peers = frozenset([gateway])
    return ctx


async def _post(url: str, ctx: ssl.SSLContext, body: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as session,
            session.post(url, json=body, ssl=ctx) as resp,
        ):
            data = await resp.json(content_type=None)
            if resp.status == 200:
                return dict(data)
            message = str((data or {}).get("error", {}).get("message", f"HTTP {resp.status}"))
    except aiohttp.ClientConnectorCertificateError as exc:
        raise UpstreamError(f"the gateway at {url} failed verification against the pinned trust anchor: {exc}") from exc
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise UpstreamError(f"cannot reach the gateway at {url}: {exc!r}") from exc
    error = {401: Unauthorized, 403: Forbidden, 400: InvalidRequest}.get(resp.status, UpstreamError)
    raise error(f"the gateway refused: {message}")


def _issued_from(data: dict[str, Any], key_pem_bytes: bytes, key_public: object, expect: SpiffeId) -> IssuedIdentity:
    chain_pem = data["cert_chain_pem"].encode()
    certs = x509.load_pem_x509_certificates(chain_pem)
    if certs[0].public_key() != key_public or identity_of(certs[0]) != expect:
        raise UpstreamError(f"the gateway answered with a certificate that is not {expect} for our key")
    return IssuedIdentity(expect, certs[0], chain_pem, data["trust_anchor_pem"].encode(), key_pem_bytes)


async def fetch_trust_anchor(gateway_url: str, fingerprint: str, *, timeout_s: float = 10.0) -> bytes:
    """The gateway's trust anchor, accepted only if its public key hashes to ``fingerprint``."""
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE  # safe: what we receive is checked against the pin
    url = gateway_url.rstrip("/") + "/mesh/trust-anchor"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as session,
            session.get(url, ssl=insecure) as resp,
        ):
            resp.raise_for_status()
            pem = await resp.read()
        anchor = x509.load_pem_x509_certificate(pem)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise UpstreamError(f"cannot fetch the trust anchor from {url}: {exc!r}") from exc
    found = spki_fingerprint(anchor)
    if found != fingerprint.strip().lower():
        raise ConfigError(
            f"the trust anchor at {url} has fingerprint {found}, not the pinned {fingerprint}: "
            "check the gateway URL, or ask for the token and fingerprint again"
        )
    return pem


async def join(
    gateway_url: str,
    token: str,
    ca_fingerprint: str,
    name: str,
    key_dir: Path,
    *,
    hosts: Sequence[str] = (),
    namespace: str = DEFAULT_NAMESPACE,
    gateway_name: str = GATEWAY_NAME,
    timeout_s: float = 10.0,
) -> IdentityPaths:
    """Join the mesh: returns where ``identity.pem`` and ``trust-anchor.pem`` were written."""
    anchor_pem = await fetch_trust_anchor(gateway_url, ca_fingerprint, timeout_s=timeout_s)
    trust_domain = ca_trust_domain(x509.load_pem_x509_certificate(anchor_pem))
    if trust_domain is None:
        raise ConfigError(f"the trust anchor at {gateway_url} is not a voxmesh CA (no spiffe:// SAN)")
    expect = SpiffeId(trust_domain, namespace, name)
    ctx = _gateway_context(anchor_pem, SpiffeId(trust_domain, namespace, gateway_name), None)
    key = generate_key()
    body = {"token": token, "csr_pem": make_csr(key, name).decode(), "name": name, "hosts": list(hosts)}
    data = await _post(gateway_url.rstrip("/") + "/mesh/join", ctx, body, timeout_s)
    issued = _issued_from(data, key_pem(key), key.public_key(), expect)
    if issued.trust_anchor_pem.strip() != anchor_pem.strip():
        raise UpstreamError("the gateway answered with a different trust anchor than the pinned one")
    return issued.write(key_dir)


def remote_renewer(
    gateway_url: str,
    key_dir: Path,
    *,
    hosts: Sequence[str] = (),
    gateway_name: str = GATEWAY_NAME,
    timeout_s: float = 10.0,
) -> Renewer:
    """A renewer for :class:`ReloadableIdentity` that asks the gateway, proving the current identity."""
    paths = IdentityPaths(key_dir)

    async def renew() -> IssuedIdentity:
        anchor_pem = paths.trust_anchor.read_bytes()
        current = x509.load_pem_x509_certificates(paths.identity.read_bytes())[0]
        me = identity_of(current)
        if me is None:
            raise ConfigError(f"{paths.identity} holds no voxmesh identity: join again")
        gateway = SpiffeId(me.trust_domain, me.namespace, gateway_name)
        ctx = _gateway_context(anchor_pem, gateway, paths.identity)
        key = generate_key()
        body = {"csr_pem": make_csr(key, me.name).decode(), "hosts": list(hosts)}
        data = await _post(gateway_url.rstrip("/") + "/mesh/renew", ctx, body, timeout_s)
        return _issued_from(data, key_pem(key), key.public_key(), me)

    return renew
