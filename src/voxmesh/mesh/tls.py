"""mTLS contexts that authorise peers by SPIFFE identity, and live certificate rotation.

Where the identity check happens (the choice, and why): inside the TLS handshake, through an
``ssl.SSLObject`` hook. The contexts built here are :class:`MeshSSLContext` objects whose
``sslobject_class`` finishes ``do_handshake()`` by reading the peer's leaf certificate and
raising ``ssl.SSLCertVerificationError`` unless its ``spiffe://`` URI SAN is in the context's
``allowed_peers``. Both asyncio's and uvloop's SSL transports create their SSL object with
``context.wrap_bio()`` and treat an ``SSLError`` from ``do_handshake()`` as a failed handshake:
the connection is closed before the application protocol's ``connection_made``, so an aiohttp
server (or a raw ``asyncio.Protocol``) never sees a byte from a refused peer and no middleware
is needed. It works the same on the client side, which is how the gateway checks a worker's
identity (hostname checking is off; the URI SAN is what is checked). OpenSSL has already
verified the chain to the trust anchor, validity dates and key usage by then.

With TLS 1.3 (the minimum here) a client finishes its handshake before the server has judged
the client certificate, so a refused *client* sees the connection close on its first read
(aiohttp: ``ServerDisconnectedError``/``ClientOSError``) rather than a handshake error. Session
tickets are off (``num_tickets = 0``): every connection presents and checks certificates.

Rotation: :class:`ReloadableIdentity` keeps ``identity.pem`` in a directory, re-issues it at
``rotate_fraction`` of its life through an injected async ``renew()`` (a local CA, or the
gateway over mTLS for remote workers; see :mod:`voxmesh.mesh.join`) and calls
``load_cert_chain`` on every context it made. OpenSSL copies the certificate into each
connection when the connection is created, so new handshakes present the new certificate
and open connections are untouched: no request is dropped.

Usage (worker side)::

    ident = await ReloadableIdentity.load_or_issue(dir, local_renewer(ca, "worker-tts-en"))
    ctx = ident.server_context(allowed=[spiffe_id(td, "gateway")])
    site = web.TCPSite(runner, host, port, ssl_context=ctx); ident.start()

Gateway side: ``ident.client_context(expect=[spiffe_id(td, "worker-tts-en")])`` passed as
``ssl=`` to aiohttp requests (one context per upstream identity).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from voxmesh.clock import Clock, wall
from voxmesh.mesh.ca import CertificateAuthority
from voxmesh.mesh.certs import (
    DEFAULT_NAMESPACE,
    IdentityPaths,
    IssuedIdentity,
    SpiffeId,
    identity_of,
    issue_identity,
    read_identity,
)
from voxmesh.mesh.rotation import RotationDecision, RotationSnapshot, decide

__all__ = [
    "MeshSSLContext",
    "ReloadableIdentity",
    "Renewer",
    "bootstrap_server_context",
    "client_context",
    "local_renewer",
    "peer_identity",
    "server_context",
]

log = logging.getLogger(__name__)

Renewer = Callable[[], Awaitable[IssuedIdentity]]
_C = TypeVar("_C", bound=ssl.SSLContext)
_MAX_SLEEP_S = 60.0  # re-check at least this often: the wall clock may jump (suspend, NTP)


class _IdentityCheckingSSLObject(ssl.SSLObject):
    """An SSLObject whose successful handshake also checks the peer's SPIFFE identity."""

    def do_handshake(self) -> None:
        super().do_handshake()  # raises SSLWantRead/WantWrite until the handshake is complete
        ctx = self.context
        allowed = getattr(ctx, "allowed_peers", None)
        if allowed is None:
            return
        der = self.getpeercert(binary_form=True)
        ident = identity_of(der) if der else None
        if ident is None or ident not in allowed:
            want = ", ".join(sorted(str(a) for a in allowed))
            msg = f"peer identity {ident or '(none)'} is not allowed here (allowed: {want})"
            log.warning("mTLS refused: %s", msg)
            raise ssl.SSLCertVerificationError(msg)


class MeshSSLContext(ssl.SSLContext):
    """An SSLContext with ``allowed_peers``: None accepts any verified peer (or none)."""

    allowed_peers: frozenset[SpiffeId] | None = None
    sslobject_class = _IdentityCheckingSSLObject


def _context(
    protocol: int, identity_file: Path, trust_anchor_pem: bytes, allowed: frozenset[SpiffeId] | None
) -> MeshSSLContext:
    ctx = MeshSSLContext(protocol)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    ctx.load_verify_locations(cadata=trust_anchor_pem.decode())
    ctx.load_cert_chain(identity_file)
    ctx.allowed_peers = allowed
    return ctx


def server_context(
    identity_file: Path, trust_anchor_pem: bytes, allowed: Iterable[SpiffeId]
) -> MeshSSLContext:
    """A server context requiring a client certificate chained to the anchor, of an allowed identity.

    Prefer :meth:`ReloadableIdentity.server_context`, which also reloads it on rotation.
    """
    ctx = _context(ssl.PROTOCOL_TLS_SERVER, identity_file, trust_anchor_pem, frozenset(allowed))
    ctx.num_tickets = 0
    return ctx


def bootstrap_server_context(identity_file: Path, trust_anchor_pem: bytes) -> MeshSSLContext:
    """The gateway's listener for ``/mesh/*``: server-auth for joiners without a certificate,
    and an *optional* client certificate (verified against the anchor when presented) so that
    members can renew over the same port. No identity is enforced at the handshake; the
    renew handler reads :func:`peer_identity` itself."""
    ctx = _context(ssl.PROTOCOL_TLS_SERVER, identity_file, trust_anchor_pem, None)
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.num_tickets = 0
    return ctx


def client_context(
    identity_file: Path, trust_anchor_pem: bytes, expect: Iterable[SpiffeId]
) -> MeshSSLContext:
    """A client context presenting our certificate and accepting only servers of ``expect``."""
    ctx = _context(ssl.PROTOCOL_TLS_CLIENT, identity_file, trust_anchor_pem, frozenset(expect))
    ctx.check_hostname = False  # the URI SAN is checked instead, by the SSLObject hook
    return ctx


def peer_identity(transport_or_sslobj: Any) -> SpiffeId | None:
    """The verified identity of the peer: pass ``request.transport`` (aiohttp), an asyncio
    transport or an ``ssl.SSLObject``. None on a plain connection or without a certificate."""
    obj = transport_or_sslobj
    if obj is not None and not isinstance(obj, ssl.SSLObject | ssl.SSLSocket):
        obj = obj.get_extra_info("ssl_object")
    if obj is None:
        return None
    der = obj.getpeercert(binary_form=True)
    return identity_of(der) if der else None


def local_renewer(
    ca: CertificateAuthority,
    name: str,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    hosts: Iterable[str] = (),
    ttl_s: float | None = None,
) -> Renewer:
    """A renewer that signs a fresh key with a CA in this process (gateway, local workers)."""
    host_list = list(hosts)

    async def renew() -> IssuedIdentity:
        return issue_identity(ca, name, namespace=namespace, hosts=host_list, ttl_s=ttl_s)

    return renew


class ReloadableIdentity:
    """An identity on disk, the SSL contexts presenting it, and the loop that rotates it.

    ``run()``/``start()`` sleep until the rotation policy (:func:`voxmesh.mesh.rotation.decide`)
    says the certificate is due, then ``rotate()``: ``renew()``, write ``identity.pem``
    atomically, ``load_cert_chain`` into each context. A failed renewal is logged and retried
    with back-off until it works; the old certificate stays in use meanwhile. ``clock`` must
    be wall time (certificates carry wall-clock dates).
    """

    def __init__(
        self,
        directory: Path,
        current: IssuedIdentity,
        renew: Renewer,
        *,
        rotate_fraction: float = 2 / 3,
        clock: Clock = wall,
    ) -> None:
        self.paths = IdentityPaths(directory)
        self.current = current
        self._renew = renew
        self._fraction = rotate_fraction
        self._clock = clock
        self._contexts: list[ssl.SSLContext] = []
        self._failures = 0
        self._last_failure: float | None = None
        self._task: asyncio.Task[None] | None = None
        self.rotations = 0

    @classmethod
    async def load_or_issue(
        cls, directory: Path, renew: Renewer, *, rotate_fraction: float = 2 / 3, clock: Clock = wall
    ) -> ReloadableIdentity:
        """Reuse the identity stored in ``directory`` if still before its rotation time, else renew."""
        current = read_identity(directory)
        if current is None or decide(
            RotationSnapshot(clock(), current.not_before, current.not_after, rotate_fraction)
        ).due:
            current = await renew()
            current.write(directory)
        return cls(directory, current, renew, rotate_fraction=rotate_fraction, clock=clock)

    @property
    def spiffe_id(self) -> SpiffeId:
        return self.current.spiffe_id

    @property
    def trust_anchor_pem(self) -> bytes:
        return self.current.trust_anchor_pem

    def server_context(self, allowed: Iterable[SpiffeId]) -> MeshSSLContext:
        return self.attach(server_context(self.paths.identity, self.trust_anchor_pem, allowed))

    def bootstrap_server_context(self) -> MeshSSLContext:
        return self.attach(bootstrap_server_context(self.paths.identity, self.trust_anchor_pem))

    def client_context(self, expect: Iterable[SpiffeId]) -> MeshSSLContext:
        return self.attach(client_context(self.paths.identity, self.trust_anchor_pem, expect))

    def attach(self, ctx: _C) -> _C:
        """Reload ``ctx`` with every future certificate (for contexts built elsewhere)."""
        self._contexts.append(ctx)
        return ctx

    def decision(self) -> RotationDecision:
        return decide(
            RotationSnapshot(
                self._clock(),
                self.current.not_before,
                self.current.not_after,
                self._fraction,
                self._failures,
                self._last_failure,
            )
        )

    async def rotate(self) -> IssuedIdentity:
        """Re-issue now and reload every attached context; raises if ``renew()`` fails."""
        new = await self._renew()
        if new.spiffe_id != self.current.spiffe_id:
            raise ValueError(f"renewal changed the identity from {self.current.spiffe_id} to {new.spiffe_id}")
        new.write(self.paths.directory)
        for ctx in self._contexts:
            ctx.load_cert_chain(self.paths.identity)
        self.current = new
        self._failures, self._last_failure = 0, None
        self.rotations += 1
        log.info("rotated %s; valid until %.0f", new.spiffe_id, new.not_after)
        return new

    async def maybe_rotate(self) -> bool:
        """Rotate if the policy says so; True if a new certificate is in place."""
        if not self.decision().due:
            return False
        try:
            await self.rotate()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._failures += 1
            self._last_failure = self._clock()
            log.warning("certificate rotation for %s failed (%d in a row): %s", self.spiffe_id, self._failures, exc)
            return False
        return True

    async def run(self) -> None:
        while True:
            decision = self.decision()
            if decision.due:
                await self.maybe_rotate()
                continue
            await asyncio.sleep(min(_MAX_SLEEP_S, max(0.0, decision.wake_at - self._clock())))

    def start(self) -> asyncio.Task[None]:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self.run(), name=f"rotate {self.spiffe_id}")
        return self._task

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
