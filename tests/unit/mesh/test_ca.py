from __future__ import annotations

import stat
import time
from pathlib import Path

import pytest
from cryptography import x509

from voxmesh.clock import FakeClock
from voxmesh.errors import ConfigError
from voxmesh.mesh.ca import ISSUER_TTL_S, CertificateAuthority, spki_fingerprint


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_first_use_creates_root_and_issuer_with_private_keys_0600(tmp_path: Path) -> None:
    ca = CertificateAuthority.load_or_create(tmp_path / "ca", "voxmesh.local")
    files = sorted(p.name for p in (tmp_path / "ca").iterdir() if not p.name.startswith("."))
    assert files == ["issuer.cert.pem", "issuer.key.pem", "root.cert.pem", "root.key.pem"]
    assert _mode(tmp_path / "ca" / "root.key.pem") == 0o600
    assert _mode(tmp_path / "ca" / "issuer.key.pem") == 0o600
    assert not [p for p in (tmp_path / "ca").iterdir() if p.name.endswith(".tmp")]
    assert ca.fingerprint.startswith("sha256:") and len(ca.fingerprint) == 7 + 64


def test_second_use_reuses_the_same_anchor_and_issuer(tmp_path: Path) -> None:
    first = CertificateAuthority.load_or_create(tmp_path, "voxmesh.local")
    second = CertificateAuthority.load_or_create(tmp_path, "voxmesh.local")
    assert second.root_cert == first.root_cert
    assert second.issuer_cert == first.issuer_cert


def test_root_is_self_signed_ca_and_issuer_is_its_pathlen0_intermediate() -> None:
    ca = CertificateAuthority.ephemeral("voxmesh.local")
    ca.root_cert.verify_directly_issued_by(ca.root_cert)
    ca.issuer_cert.verify_directly_issued_by(ca.root_cert)
    root_bc = ca.root_cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    issuer_bc = ca.issuer_cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert (root_bc.ca, root_bc.path_length) == (True, 1)
    assert (issuer_bc.ca, issuer_bc.path_length) == (True, 0)
    assert ca.issuer_cert.not_valid_after_utc <= ca.root_cert.not_valid_after_utc
    san = ca.root_cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["spiffe://voxmesh.local"]


def test_other_trust_domain_is_a_config_error_not_a_silent_new_ca(tmp_path: Path) -> None:
    CertificateAuthority.load_or_create(tmp_path, "a.local")
    with pytest.raises(ConfigError, match=r"trust domain 'a\.local'"):
        CertificateAuthority.load_or_create(tmp_path, "b.local")


def test_certificate_without_its_key_is_a_config_error(tmp_path: Path) -> None:
    CertificateAuthority.load_or_create(tmp_path, "voxmesh.local")
    (tmp_path / "root.key.pem").unlink()
    with pytest.raises(ConfigError, match=r"root\.key\.pem is missing"):
        CertificateAuthority.load_or_create(tmp_path, "voxmesh.local")


def test_key_of_another_pair_is_a_config_error(tmp_path: Path) -> None:
    CertificateAuthority.load_or_create(tmp_path, "voxmesh.local")
    (tmp_path / "issuer.key.pem").write_bytes((tmp_path / "root.key.pem").read_bytes())
    with pytest.raises(ConfigError, match="does not match"):
        CertificateAuthority.load_or_create(tmp_path, "voxmesh.local")


def test_crash_before_a_certificate_was_written_recreates_that_tier(tmp_path: Path) -> None:
    first = CertificateAuthority.load_or_create(tmp_path, "voxmesh.local")
    (tmp_path / "issuer.cert.pem").unlink()  # as if we died between key and certificate
    second = CertificateAuthority.load_or_create(tmp_path, "voxmesh.local")
    assert second.root_cert == first.root_cert
    assert second.issuer_cert != first.issuer_cert
    second.issuer_cert.verify_directly_issued_by(first.root_cert)


def test_issuer_is_reissued_from_the_same_root_when_a_third_of_its_life_is_left(tmp_path: Path) -> None:
    clock = FakeClock(time.time())
    first = CertificateAuthority.load_or_create(tmp_path, "voxmesh.local", clock=clock)
    clock.advance(0.5 * ISSUER_TTL_S)
    assert CertificateAuthority.load_or_create(tmp_path, "voxmesh.local", clock=clock).issuer_cert == first.issuer_cert
    clock.advance(0.2 * ISSUER_TTL_S)
    renewed = CertificateAuthority.load_or_create(tmp_path, "voxmesh.local", clock=clock)
    assert renewed.issuer_cert != first.issuer_cert
    assert renewed.root_cert == first.root_cert
    assert renewed.issuer_cert.not_valid_before_utc.timestamp() > first.issuer_cert.not_valid_before_utc.timestamp()


def test_expired_root_is_a_config_error(tmp_path: Path) -> None:
    clock = FakeClock(time.time())
    CertificateAuthority.load_or_create(tmp_path, "voxmesh.local", clock=clock, root_ttl_s=3600)
    clock.advance(7200)
    with pytest.raises(ConfigError, match="expired"):
        CertificateAuthority.load_or_create(tmp_path, "voxmesh.local", clock=clock)


def test_fingerprint_is_sha256_of_the_anchor_public_key() -> None:
    ca = CertificateAuthority.ephemeral("voxmesh.local")
    assert ca.fingerprint == spki_fingerprint(ca.root_cert)
    assert ca.fingerprint != spki_fingerprint(ca.issuer_cert)
