"""voxmesh identity: a built-in CA, short-lived SPIFFE certificates, mTLS and joining.

What the gateway does (one process holds the CA)::

    ca = CertificateAuthority.load_or_create(settings.data_dir / "mesh" / "ca", settings.mesh.trust_domain)
    gw = await ReloadableIdentity.load_or_issue(
        settings.data_dir / "mesh" / "gateway",
        local_renewer(ca, "gateway", ttl_s=settings.mesh.cert_ttl_s),
        rotate_fraction=settings.mesh.rotate_fraction,
    )
    gw.start()                                               # rotates at 2/3 of life
    upstream_ssl = gw.client_context(expect=[spiffe_id(td, "worker-tts-en")])  # ssl= for aiohttp
    authority = JoinAuthority(ca, FileTokenStore(settings.data_dir / "mesh" / "join-tokens.json"))
    setup_join_routes(app, authority)                        # serve with gw.bootstrap_server_context()

What a local worker does (it may sign with the same CA directory, or be handed its files)::

    ident = await ReloadableIdentity.load_or_issue(dir, local_renewer(ca, "worker-tts-en"))
    site = web.TCPSite(runner, host, port, ssl_context=ident.server_context([spiffe_id(td, "gateway")]))
    ident.start()

A worker on another host: ``await join(gateway_url, token, fingerprint, name, dir)`` once, then
``ReloadableIdentity.load_or_issue(dir, remote_renewer(gateway_url, dir))``.

Peers are refused inside the TLS handshake (see :mod:`voxmesh.mesh.tls`): plain connections,
missing or foreign certificates and valid certificates of a non-allowed identity never reach
the application. ``peer_identity(request.transport)`` tells a handler who called.
"""

from __future__ import annotations

from voxmesh.mesh.ca import CertificateAuthority, spki_fingerprint
from voxmesh.mesh.certs import (
    IdentityPaths,
    IssuedIdentity,
    SpiffeId,
    identity_of,
    issue_from_csr,
    issue_identity,
    make_csr,
    read_identity,
    spiffe_id,
)
from voxmesh.mesh.join import JoinAuthority, JoinToken, join, remote_renewer, setup_join_routes
from voxmesh.mesh.rotation import RotationAction, RotationDecision, RotationSnapshot, decide
from voxmesh.mesh.tls import (
    MeshSSLContext,
    ReloadableIdentity,
    Renewer,
    bootstrap_server_context,
    client_context,
    local_renewer,
    peer_identity,
    server_context,
)
from voxmesh.mesh.tokens import FileTokenStore, MemoryTokenStore, TokenStore

__all__ = [
    "CertificateAuthority",
    "FileTokenStore",
    "IdentityPaths",
    "IssuedIdentity",
    "JoinAuthority",
    "JoinToken",
    "MemoryTokenStore",
    "MeshSSLContext",
    "ReloadableIdentity",
    "Renewer",
    "RotationAction",
    "RotationDecision",
    "RotationSnapshot",
    "SpiffeId",
    "TokenStore",
    "bootstrap_server_context",
    "client_context",
    "decide",
    "identity_of",
    "issue_from_csr",
    "issue_identity",
    "join",
    "local_renewer",
    "make_csr",
    "peer_identity",
    "read_identity",
    "remote_renewer",
    "server_context",
    "setup_join_routes",
    "spiffe_id",
    "spki_fingerprint",
]
