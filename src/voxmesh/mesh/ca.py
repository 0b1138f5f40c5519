"""The built-in certificate authority: a trust anchor (root) and an issuer (intermediate).

Two tiers, like Linkerd and SPIRE: the root is the trust anchor every mesh member pins
(long-lived, 10 years by default); the issuer is an intermediate signed by the root (1 year)
that signs the short-lived leaf certificates (see :mod:`voxmesh.mesh.certs`). All keys are
EC P-256, all signatures ECDSA-SHA256. Both CA certificates carry the URI SAN
``spiffe://<trust_domain>`` so a CA directory can be checked against the settings.

Files in ``directory`` (normally ``<data_dir>/mesh/ca``)::

    root.key.pem     0600    root.cert.pem      (the trust anchor)
    issuer.key.pem   0600    issuer.cert.pem

Creation runs under an flock and writes every file atomically, key before certificate, so a
certificate file on disk always has its key next to it: after a crash half way, the missing
tier is simply created again (a root without ``root.cert.pem`` never signed anything). The
issuer is re-issued from the root (new key) once less than a third of its life is left; leaves
it signed before stay valid because they carry their issuer in their chain.

Limits: the root key sits on disk next to the issuer (there is no offline root); there is no
revocation (CRL/OCSP): short leaf lifetimes are the revocation story, as in Linkerd.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from voxmesh.clock import Clock, wall
from voxmesh.errors import ConfigError
from voxmesh.mesh._files import PRIVATE, PUBLIC, atomic_write, locked

__all__ = [
    "ISSUER_TTL_S",
    "ROOT_TTL_S",
    "CertificateAuthority",
    "ca_trust_domain",
    "spki_fingerprint",
]

ROOT_TTL_S = 10 * 365 * 24 * 3600.0
ISSUER_TTL_S = 365 * 24 * 3600.0
_BACKDATE_S = 300.0  # CA certs tolerate this much clock skew between hosts


def spki_fingerprint(cert: x509.Certificate) -> str:
    """``sha256:<hex>`` of the certificate's SubjectPublicKeyInfo (kubeadm's CA cert hash)."""
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256:" + hashlib.sha256(spki).hexdigest()


def _ts(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(seconds), tz=dt.UTC)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _ca_cert(
    *,
    subject: str,
    trust_domain: str,
    public_key: ec.EllipticCurvePublicKey,
    signer_key: ec.EllipticCurvePrivateKey,
    signer_cert: x509.Certificate | None,
    path_length: int,
    now: float,
    ttl_s: float,
) -> x509.Certificate:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "voxmesh"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{subject} ({trust_domain})"),
        ]
    )
    issuer_name = name if signer_cert is None else signer_cert.subject
    not_after = now + ttl_s
    if signer_cert is not None:
        not_after = min(not_after, signer_cert.not_valid_after_utc.timestamp())
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(_ts(now - _BACKDATE_S))
        .not_valid_after(_ts(not_after))
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(f"spiffe://{trust_domain}")]),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    authority_key = signer_key.public_key()
    builder = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(authority_key), critical=False
    )
    return builder.sign(signer_key, hashes.SHA256())


def ca_trust_domain(cert: x509.Certificate) -> str | None:
    """The trust domain a voxmesh CA certificate was made for (its ``spiffe://td`` URI SAN)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    for uri in san.get_values_for_type(x509.UniformResourceIdentifier):
        if uri.startswith("spiffe://"):
            return uri.removeprefix("spiffe://").rstrip("/")
    return None


class CertificateAuthority:
    """A root (trust anchor) and an issuer (intermediate) that signs leaf certificates.

    Build it with :meth:`load_or_create` (files in a data directory) or :meth:`ephemeral`
    (in memory, for tests). Leaf certificates are made by :func:`voxmesh.mesh.issue_identity`
    and :func:`voxmesh.mesh.issue_from_csr`, which use :attr:`issuer_cert`/:attr:`issuer_key`.
    """

    def __init__(
        self,
        trust_domain: str,
        root_cert: x509.Certificate,
        issuer_cert: x509.Certificate,
        issuer_key: ec.EllipticCurvePrivateKey,
        *,
        clock: Clock = wall,
    ) -> None:
        self.trust_domain = trust_domain
        self.root_cert = root_cert
        self.issuer_cert = issuer_cert
        self.issuer_key = issuer_key
        self.clock = clock

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def ephemeral(cls, trust_domain: str, *, clock: Clock = wall) -> CertificateAuthority:
        """A fresh CA in memory only (tests, throw-away meshes)."""
        now = clock()
        root_key, issuer_key = _new_key(), _new_key()
        root = _ca_cert(
            subject="voxmesh root CA",
            trust_domain=trust_domain,
            public_key=root_key.public_key(),
            signer_key=root_key,
            signer_cert=None,
            path_length=1,
            now=now,
            ttl_s=ROOT_TTL_S,
        )
        issuer = _ca_cert(
            subject="voxmesh issuer",
            trust_domain=trust_domain,
            public_key=issuer_key.public_key(),
            signer_key=root_key,
            signer_cert=root,
            path_length=0,
            now=now,
            ttl_s=ISSUER_TTL_S,
        )
        return cls(trust_domain, root, issuer, issuer_key, clock=clock)

    @classmethod
    def load_or_create(
        cls,
        directory: Path,
        trust_domain: str,
        *,
        clock: Clock = wall,
        root_ttl_s: float = ROOT_TTL_S,
        issuer_ttl_s: float = ISSUER_TTL_S,
    ) -> CertificateAuthority:
        """Load the CA from ``directory``, creating whatever tier is missing (first use).

        Raises :class:`~voxmesh.errors.ConfigError` when the files are inconsistent (a
        certificate without its key, an issuer not signed by the root), when the root has
        expired, or when the CA was made for another trust domain: regenerating silently would
        cut off every member that pinned the old trust anchor.
        """
        with locked(directory):
            now = clock()
            root_key, root = cls._load_or_create_root(directory, trust_domain, now, root_ttl_s)
            issuer_key, issuer = cls._load_or_create_issuer(
                directory, trust_domain, root_key, root, now, issuer_ttl_s
            )
        return cls(trust_domain, root, issuer, issuer_key, clock=clock)

    @staticmethod
    def _read_pair(directory: Path, stem: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate] | None:
        cert_path, key_path = directory / f"{stem}.cert.pem", directory / f"{stem}.key.pem"
        if not cert_path.exists():
            return None  # never finished: the key (if any) signed nothing, so it may be replaced
        if not key_path.exists():
            raise ConfigError(
                f"{cert_path} exists but {key_path} is missing: restore the key from a backup "
                f"or move {directory} away to create a new CA (every member must then re-join)"
            )
        try:
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read the mesh CA {stem} in {directory}: {exc}") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
            raise ConfigError(f"{key_path} does not match {cert_path}: restore both from the same backup")
        return key, cert

    @staticmethod
    def _write_pair(directory: Path, stem: str, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
        atomic_write(directory / f"{stem}.key.pem", _key_pem(key), PRIVATE)
        atomic_write(directory / f"{stem}.cert.pem", cert.public_bytes(serialization.Encoding.PEM), PUBLIC)

    @classmethod
    def _load_or_create_root(
        cls, directory: Path, trust_domain: str, now: float, ttl_s: float
    ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        pair = cls._read_pair(directory, "root")
        if pair is None:
            key = _new_key()
            cert = _ca_cert(
                subject="voxmesh root CA",
                trust_domain=trust_domain,
                public_key=key.public_key(),
                signer_key=key,
                signer_cert=None,
                path_length=1,
                now=now,
                ttl_s=ttl_s,
            )
            cls._write_pair(directory, "root", key, cert)
            return key, cert
        key, cert = pair
        found = ca_trust_domain(cert)
        if found != trust_domain:
            raise ConfigError(
                f"the mesh CA in {directory} is for trust domain {found!r}, settings say "
                f"{trust_domain!r}: set mesh.trust_domain={found!r} or use another data dir"
            )
        if cert.not_valid_after_utc.timestamp() <= now:
            raise ConfigError(
                f"the mesh trust anchor in {directory} expired on {cert.not_valid_after_utc:%Y-%m-%d}: "
                "move the directory away to create a new CA and re-join every member"
            )
        return key, cert

    @classmethod
    def _load_or_create_issuer(
        cls,
        directory: Path,
        trust_domain: str,
        root_key: ec.EllipticCurvePrivateKey,
        root: x509.Certificate,
        now: float,
        ttl_s: float,
    ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        pair = cls._read_pair(directory, "issuer")
        if pair is not None:
            key, cert = pair
            try:
                cert.verify_directly_issued_by(root)
            except (ValueError, TypeError, InvalidSignature) as exc:
                raise ConfigError(
                    f"{directory / 'issuer.cert.pem'} was not issued by {directory / 'root.cert.pem'}: "
                    "delete the issuer files to re-issue it from the root"
                ) from exc
            start = cert.not_valid_before_utc.timestamp()
            end = cert.not_valid_after_utc.timestamp()
            if end - now > (end - start) / 3:
                return key, cert
        key = _new_key()
        cert = _ca_cert(
            subject="voxmesh issuer",
            trust_domain=trust_domain,
            public_key=key.public_key(),
            signer_key=root_key,
            signer_cert=root,
            path_length=0,
            now=now,
            ttl_s=ttl_s,
        )
        cls._write_pair(directory, "issuer", key, cert)
        return key, cert

    # -- views ---------------------------------------------------------------------------------

    @property
    def trust_anchor_pem(self) -> bytes:
        return self.root_cert.public_bytes(serialization.Encoding.PEM)

    @property
    def issuer_pem(self) -> bytes:
        return self.issuer_cert.public_bytes(serialization.Encoding.PEM)

    @property
    def fingerprint(self) -> str:
        """``sha256:<hex>`` of the trust anchor's public key: what a joining worker pins."""
        return spki_fingerprint(self.root_cert)

    @property
    def issuer_not_after(self) -> float:
        return self.issuer_cert.not_valid_after_utc.timestamp()

