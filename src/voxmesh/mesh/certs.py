"""Short-lived leaf certificates carrying a SPIFFE-style identity.

Identity: the URI SAN ``spiffe://<trust_domain>/ns/<namespace>/sa/<name>``, e.g.
``spiffe://voxmesh.local/ns/default/sa/gateway`` or ``.../sa/worker-tts-en`` (a deployment's
replicas share one identity, like pods of one Kubernetes service account). Peers are
authorised by this URI only; the DNS/IP SANs (``127.0.0.1``, ``localhost`` and the given host
addresses) exist for ordinary clients such as curl or Prometheus that check hostnames.

Leaves are EC P-256 (or the requester's key for a CSR), ``CA:FALSE``, key usage
digitalSignature, extended key usage serverAuth + clientAuth (one certificate serves both
directions), valid from a few seconds in the past (clock skew: 5% of the TTL, at most 60 s)
for ``ttl_s`` (default ``MeshSettings.cert_ttl_s``, 24 h), never past the issuer's expiry.

On disk an identity is two files in one directory (see :class:`IdentityPaths`):
``identity.pem`` (private key + leaf + issuer, 0600, written atomically so key and
certificate always change together) and ``trust-anchor.pem``.

Limits: the CSR's own subject and SANs are ignored; the authority decides the identity.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from voxmesh.errors import InvalidRequest
from voxmesh.mesh._files import PRIVATE, PUBLIC, atomic_write
from voxmesh.mesh.ca import CertificateAuthority
from voxmesh.settings import MeshSettings

__all__ = [
    "DEFAULT_NAMESPACE",
    "DEFAULT_TTL_S",
    "IdentityPaths",
    "IssuedIdentity",
    "SpiffeId",
    "generate_key",
    "identity_of",
    "issue_from_csr",
    "issue_identity",
    "key_pem",
    "make_csr",
    "read_identity",
    "spiffe_id",
]

DEFAULT_NAMESPACE = "default"
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_DOMAIN = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,253}[a-z0-9])?$")
_URI = re.compile(r"^spiffe://([^/]+)/ns/([^/]+)/sa/([^/]+)$")
_MAX_BACKDATE_S = 60.0
DEFAULT_TTL_S = float(MeshSettings.model_fields["cert_ttl_s"].default)  # 24 h

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True, order=True)
class SpiffeId:
    """A mesh identity; ``str()`` gives the URI. Fields are validated on construction."""

    trust_domain: str
    namespace: str
    name: str

    def __post_init__(self) -> None:
        if not _DOMAIN.match(self.trust_domain):
            raise InvalidRequest(
                f"trust domain {self.trust_domain!r} must be lower-case letters, digits, '.' and '-'",
                param="trust_domain",
            )
        for field, value in (("namespace", self.namespace), ("name", self.name)):
            if not _LABEL.match(value):
                raise InvalidRequest(
                    f"{field} {value!r} must be 1-63 lower-case letters, digits and '-' "
                    "(starting and ending with a letter or digit)",
                    param=field,
                )

    def __str__(self) -> str:
        return f"spiffe://{self.trust_domain}/ns/{self.namespace}/sa/{self.name}"

    @classmethod
    def parse(cls, uri: str) -> SpiffeId:
        match = _URI.match(uri)
        if match is None:
            raise InvalidRequest(f"not a voxmesh identity URI: {uri!r}", param="spiffe_id")
        return cls(*match.groups())


def spiffe_id(trust_domain: str, name: str, namespace: str = DEFAULT_NAMESPACE) -> SpiffeId:
    return SpiffeId(trust_domain, namespace, name)


def identity_of(cert: x509.Certificate | bytes) -> SpiffeId | None:
    """The voxmesh identity in a certificate (object or DER bytes), or None if it has none.

    A certificate with more than one ``spiffe://`` URI has no identity (SPIFFE allows one).
    """
    if isinstance(cert, bytes):
        cert = x509.load_der_x509_certificate(cert)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    uris = [u for u in san.get_values_for_type(x509.UniformResourceIdentifier) if u.startswith("spiffe://")]
    if len(uris) != 1:
        return None
    try:
        return SpiffeId.parse(uris[0])
    except InvalidRequest:
        return None


def generate_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def make_csr(key: PrivateKey, name: str) -> bytes:
    """A PEM CSR proving possession of ``key`` (the subject is informational only)."""
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class IdentityPaths:
    """Where an identity lives: ``identity.pem`` (key + chain, 0600) and ``trust-anchor.pem``."""

    directory: Path

    @property
    def identity(self) -> Path:
        return self.directory / "identity.pem"

    @property
    def trust_anchor(self) -> Path:
        return self.directory / "trust-anchor.pem"


@dataclass(frozen=True)
class IssuedIdentity:
    """A signed leaf with its chain; ``key_pem`` is None when issued from a CSR."""

    spiffe_id: SpiffeId
    cert: x509.Certificate
    chain_pem: bytes  # leaf + issuer: what the holder presents in a handshake
    trust_anchor_pem: bytes
    key_pem: bytes | None = None

    @property
    def not_before(self) -> float:
        return self.cert.not_valid_before_utc.timestamp()

    @property
    def not_after(self) -> float:
        return self.cert.not_valid_after_utc.timestamp()

    def with_key(self, key_pem_bytes: bytes) -> IssuedIdentity:
        return IssuedIdentity(self.spiffe_id, self.cert, self.chain_pem, self.trust_anchor_pem, key_pem_bytes)

    def write(self, directory: Path) -> IdentityPaths:
        """Store atomically; the key and its certificate go into one file so they swap together."""
        if self.key_pem is None:
            raise ValueError("cannot write an identity without its private key: use with_key() first")
        paths = IdentityPaths(directory)
        atomic_write(paths.trust_anchor, self.trust_anchor_pem, PUBLIC)
        atomic_write(paths.identity, self.key_pem + self.chain_pem, PRIVATE)
        return paths


def read_identity(directory: Path) -> IssuedIdentity | None:
    """The identity stored in ``directory`` by :meth:`IssuedIdentity.write`, or None."""
    paths = IdentityPaths(directory)
    if not (paths.identity.exists() and paths.trust_anchor.exists()):
        return None
    blob = paths.identity.read_bytes()
    key = serialization.load_pem_private_key(blob, password=None)
    certs = x509.load_pem_x509_certificates(blob)
    ident = identity_of(certs[0])
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        return None
    if ident is None or key.public_key() != certs[0].public_key():
        return None
    chain = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)
    return IssuedIdentity(ident, certs[0], chain, paths.trust_anchor.read_bytes(), key_pem(key))


def _sans(ident: SpiffeId, hosts: Iterable[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(str(ident))]
    seen: set[str] = set()
    for host in ("127.0.0.1", "localhost", *hosts):
        host = host.strip().lower()
        if not host or host in seen:
            continue
        seen.add(host)
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            if not _DOMAIN.match(host):
                raise InvalidRequest(f"host {host!r} is neither an IP address nor a DNS name", param="hosts") from None
            names.append(x509.DNSName(host))
    return names


def _sign_leaf(
    ca: CertificateAuthority,
    public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey,
    ident: SpiffeId,
    hosts: Iterable[str],
    ttl_s: float,
) -> x509.Certificate:
    if ident.trust_domain != ca.trust_domain:
        raise InvalidRequest(
            f"identity {ident} is outside this CA's trust domain {ca.trust_domain!r}", param="spiffe_id"
        )
    if ttl_s <= 0:
        raise InvalidRequest("certificate TTL must be positive", param="ttl_s")
    now = ca.clock()
    not_before = math.floor(now - min(_MAX_BACKDATE_S, 0.05 * ttl_s))
    not_after = min(math.floor(now + ttl_s), math.floor(ca.issuer_not_after))
    if not_after <= now:
        raise InvalidRequest("the mesh issuer expires too soon to sign: restart the gateway to renew it")
    utc = dt.UTC
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ident.name)]))
        .issuer_name(ca.issuer_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(dt.datetime.fromtimestamp(not_before, tz=utc))
        .not_valid_after(dt.datetime.fromtimestamp(not_after, tz=utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=isinstance(public_key, rsa.RSAPublicKey),
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName(_sans(ident, hosts)), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.issuer_key.public_key()), critical=False
        )
    )
    return builder.sign(ca.issuer_key, hashes.SHA256())


def _issued(ca: CertificateAuthority, ident: SpiffeId, cert: x509.Certificate, key: bytes | None) -> IssuedIdentity:
    chain = cert.public_bytes(serialization.Encoding.PEM) + ca.issuer_pem
    return IssuedIdentity(ident, cert, chain, ca.trust_anchor_pem, key)


def issue_identity(
    ca: CertificateAuthority,
    name: str,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    hosts: Iterable[str] = (),
    ttl_s: float | None = None,
    key: PrivateKey | None = None,
) -> IssuedIdentity:
    """Issue a leaf for ``name`` with a new (or the given) key; the result includes the key."""
    ident = SpiffeId(ca.trust_domain, namespace, name)
    key = key or generate_key()
    ttl = DEFAULT_TTL_S if ttl_s is None else ttl_s
    cert = _sign_leaf(ca, key.public_key(), ident, hosts, ttl)
    return _issued(ca, ident, cert, key_pem(key))


def issue_from_csr(
    ca: CertificateAuthority,
    csr_pem: bytes,
    name: str,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    hosts: Iterable[str] = (),
    ttl_s: float | None = None,
) -> IssuedIdentity:
    """Issue a leaf for the key in a CSR (the key never leaves its host); ``key_pem`` is None.

    Accepts EC P-256/P-384 and RSA >= 2048 keys; the CSR signature must verify.
    """
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
    except ValueError as exc:
        raise InvalidRequest(f"csr_pem is not a PEM certificate signing request: {exc}", param="csr_pem") from exc
    if not csr.is_signature_valid:
        raise InvalidRequest("the CSR signature does not verify: sign it with the key it carries", param="csr_pem")
    public_key = csr.public_key()
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if public_key.curve.name not in ("secp256r1", "secp384r1"):
            raise InvalidRequest(f"EC curve {public_key.curve.name} is not accepted: use P-256", param="csr_pem")
    elif isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < 2048:
            raise InvalidRequest("RSA keys must have at least 2048 bits", param="csr_pem")
    else:
        raise InvalidRequest("only EC P-256/P-384 and RSA keys are accepted", param="csr_pem")
    ident = SpiffeId(ca.trust_domain, namespace, name)
    ttl = DEFAULT_TTL_S if ttl_s is None else ttl_s
    cert = _sign_leaf(ca, public_key, ident, hosts, ttl)
    return _issued(ca, ident, cert, None)
