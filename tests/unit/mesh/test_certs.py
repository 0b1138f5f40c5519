from __future__ import annotations

import ipaddress
import stat
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from voxmesh.clock import FakeClock
from voxmesh.errors import InvalidRequest
from voxmesh.mesh.ca import CertificateAuthority
from voxmesh.mesh.certs import (
    SpiffeId,
    _sign_leaf,
    generate_key,
    identity_of,
    issue_from_csr,
    issue_identity,
    make_csr,
    read_identity,
    spiffe_id,
)
from voxmesh.settings import MeshSettings

TD = "voxmesh.local"


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority.ephemeral(TD)


def _sans(cert: x509.Certificate) -> x509.SubjectAlternativeName:
    return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value


def _verify(anchor: CertificateAuthority, leaf: x509.Certificate, issuer: x509.Certificate) -> None:
    verifier = (
        verification.PolicyBuilder()
        .store(verification.Store([anchor.root_cert]))
        .build_client_verifier()
    )
    verifier.verify(leaf, [issuer])


def test_spiffe_id_uri_form_and_round_trip() -> None:
    ident = spiffe_id(TD, "worker-tts-en")
    assert str(ident) == "spiffe://voxmesh.local/ns/default/sa/worker-tts-en"
    assert SpiffeId.parse(str(ident)) == ident
    assert str(spiffe_id(TD, "gateway", "prod")) == "spiffe://voxmesh.local/ns/prod/sa/gateway"


@pytest.mark.parametrize("name", ["", "Gateway", "a_b", "-x", "x-", "a/b", "x" * 64])
def test_invalid_names_are_refused_with_the_field_named(name: str) -> None:
    with pytest.raises(InvalidRequest) as err:
        spiffe_id(TD, name)
    assert err.value.param == "name"


@pytest.mark.parametrize(
    "uri", ["https://voxmesh.local/ns/a/sa/b", "spiffe://voxmesh.local/sa/b", "spiffe://td/ns/a/sa/b/extra"]
)
def test_parse_rejects_other_uris(uri: str) -> None:
    with pytest.raises(InvalidRequest):
        SpiffeId.parse(uri)


def test_leaf_contents(ca: CertificateAuthority) -> None:
    issued = issue_identity(ca, "worker-tts-en", hosts=["10.1.2.3", "node-2.lan", "127.0.0.1"])
    cert = issued.cert
    san = _sans(cert)
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [
        "spiffe://voxmesh.local/ns/default/sa/worker-tts-en"
    ]
    assert san.get_values_for_type(x509.DNSName) == ["localhost", "node-2.lan"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("10.1.2.3"),
    ]
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and not bc.value.ca
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert cert.issuer == ca.issuer_cert.subject
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "worker-tts-en"
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert identity_of(cert) == spiffe_id(TD, "worker-tts-en")
    assert identity_of(cert.public_bytes(serialization.Encoding.DER)) == issued.spiffe_id
    _verify(ca, cert, ca.issuer_cert)


def test_default_lifetime_is_the_settings_ttl_with_a_small_backdate(ca: CertificateAuthority) -> None:
    before = time.time()
    issued = issue_identity(ca, "gateway")
    ttl = MeshSettings().cert_ttl_s
    assert ttl == 24 * 3600
    assert before - 61 <= issued.not_before <= before
    assert before + ttl - 1 <= issued.not_after <= time.time() + ttl


def test_tiny_ttl_backdates_only_a_fraction(ca: CertificateAuthority) -> None:
    now = time.time()
    issued = issue_identity(ca, "gateway", ttl_s=3)
    assert now - 1.2 <= issued.not_before <= now
    assert now + 1.9 <= issued.not_after <= now + 3


def test_leaf_never_outlives_its_issuer() -> None:
    clock = FakeClock(time.time())
    ca = CertificateAuthority.ephemeral(TD, clock=clock)
    clock.advance(ca.issuer_not_after - clock() - 100)
    issued = issue_identity(ca, "gateway", ttl_s=3600)
    assert issued.not_after <= ca.issuer_not_after


def test_chain_does_not_verify_against_another_anchor(ca: CertificateAuthority) -> None:
    other = CertificateAuthority.ephemeral(TD)
    issued = issue_identity(other, "gateway")
    with pytest.raises(verification.VerificationError):
        _verify(ca, issued.cert, other.issuer_cert)


def test_csr_issue_keeps_the_requesters_key_and_ignores_requested_names(ca: CertificateAuthority) -> None:
    key = generate_key()
    sneaky = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gateway")]))
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier("spiffe://voxmesh.local/ns/default/sa/gateway")]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
    )
    issued = issue_from_csr(ca, sneaky, "worker-mt", hosts=["10.0.0.7"])
    assert issued.key_pem is None
    assert issued.cert.public_key() == key.public_key()
    assert identity_of(issued.cert) == spiffe_id(TD, "worker-mt")
    assert issued.chain_pem.count(b"BEGIN CERTIFICATE") == 2


def test_csr_with_bad_signature_or_weak_key_is_refused(ca: CertificateAuthority) -> None:
    with pytest.raises(InvalidRequest, match="not a PEM"):
        issue_from_csr(ca, b"garbage", "w")
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(InvalidRequest, match="2048"):
        issue_from_csr(ca, make_csr(weak, "w"), "w")
    p521 = ec.generate_private_key(ec.SECP521R1())
    with pytest.raises(InvalidRequest, match="P-256"):
        issue_from_csr(ca, make_csr(p521, "w"), "w")


def test_identity_of_needs_exactly_one_spiffe_uri(ca: CertificateAuthority) -> None:
    key = generate_key()

    def cert(names: list[x509.GeneralName] | None) -> x509.Certificate:
        b = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")]))
            .public_key(key.public_key())
            .serial_number(1)
            .not_valid_before(ca.root_cert.not_valid_before_utc)
            .not_valid_after(ca.root_cert.not_valid_after_utc)
        )
        if names is not None:
            b = b.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return b.sign(key, hashes.SHA256())

    assert identity_of(cert(None)) is None
    assert identity_of(cert([x509.DNSName("a")])) is None
    two = [x509.UniformResourceIdentifier(f"spiffe://{TD}/ns/default/sa/{n}") for n in ("a", "b")]
    assert identity_of(cert(two)) is None


def test_other_trust_domain_or_bad_host_is_refused(ca: CertificateAuthority) -> None:
    with pytest.raises(InvalidRequest, match="trust domain"):
        _sign_leaf(ca, generate_key().public_key(), spiffe_id("other.local", "w"), [], 10)
    with pytest.raises(InvalidRequest, match="neither an IP"):
        issue_identity(ca, "w", hosts=["bad host!"])


def test_write_and_read_back(tmp_path: Path, ca: CertificateAuthority) -> None:
    issued = issue_identity(ca, "worker-tts-en")
    paths = issued.write(tmp_path / "id")
    assert stat.S_IMODE(paths.identity.stat().st_mode) == 0o600
    assert paths.trust_anchor.read_bytes() == ca.trust_anchor_pem
    back = read_identity(tmp_path / "id")
    assert back is not None
    assert back.cert == issued.cert and back.spiffe_id == issued.spiffe_id
    assert read_identity(tmp_path / "missing") is None
    with pytest.raises(ValueError, match="private key"):
        issue_from_csr(ca, make_csr(generate_key(), "w"), "w").write(tmp_path / "nokey")
