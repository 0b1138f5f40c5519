from __future__ import annotations

import voxmesh.mesh as mesh


def test_public_surface_is_exactly_what_we_mean() -> None:
    assert sorted(mesh.__all__) == [
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
    for name in mesh.__all__:
        assert getattr(mesh, name) is not None
    public = {n for n in dir(mesh) if not n.startswith("_")} - set(mesh.__all__)
    assert public <= {"annotations", "ca", "certs", "join", "rotation", "tls", "tokens"}
