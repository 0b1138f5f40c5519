from __future__ import annotations

import ssl
import time
from pathlib import Path

import pytest

from voxmesh.clock import FakeClock
from voxmesh.mesh.ca import CertificateAuthority
from voxmesh.mesh.certs import IssuedIdentity, read_identity, spiffe_id
from voxmesh.mesh.rotation import RotationAction
from voxmesh.mesh.tls import ReloadableIdentity, local_renewer


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(float(int(time.time())))


async def test_rotates_only_when_due_and_reloads_every_context(tmp_path: Path, clock: FakeClock) -> None:
    ca = CertificateAuthority.ephemeral("voxmesh.local", clock=clock)
    ident = await ReloadableIdentity.load_or_issue(tmp_path, local_renewer(ca, "gateway", ttl_s=3000), clock=clock)
    loaded: list[str] = []

    class Spy(ssl.SSLContext):
        def load_cert_chain(self, certfile, keyfile=None, password=None):  # type: ignore[no-untyped-def]
            loaded.append(str(certfile))
            super().load_cert_chain(certfile, keyfile, password)

    ident.attach(Spy(ssl.PROTOCOL_TLS_CLIENT))
    ident.server_context([spiffe_id("voxmesh.local", "worker")])
    first = ident.current
    clock.advance(1500)
    assert await ident.maybe_rotate() is False and ident.current is first
    clock.advance(600)  # 2100 s of a ~3150 s life: past 2/3
    assert await ident.maybe_rotate() is True
    assert ident.current is not first and ident.rotations == 1
    assert loaded == [str(ident.paths.identity)]
    stored = read_identity(tmp_path)
    assert stored is not None and stored.cert == ident.current.cert
    assert ident.decision().action is RotationAction.KEEP


async def test_failed_renewal_keeps_the_old_certificate_and_backs_off(tmp_path: Path, clock: FakeClock) -> None:
    ca = CertificateAuthority.ephemeral("voxmesh.local", clock=clock)
    good = local_renewer(ca, "worker", ttl_s=300)
    calls = 0

    async def flaky() -> IssuedIdentity:
        nonlocal calls
        calls += 1
        if 1 < calls <= 3:  # the initial issue succeeds, then two failures
            raise ConnectionError("issuer unreachable")
        return await good()

    ident = await ReloadableIdentity.load_or_issue(tmp_path, flaky, clock=clock)
    first = ident.current
    clock.advance(250)
    assert await ident.maybe_rotate() is False
    assert ident.current is first
    assert ident.decision().action is RotationAction.BACKOFF
    clock.advance(1)
    assert await ident.maybe_rotate() is False  # second failure
    clock.advance(1)
    assert ident.decision().action is RotationAction.BACKOFF  # now waits 2 s
    clock.advance(1)
    assert await ident.maybe_rotate() is True
    assert calls == 4 and ident.current is not first


async def test_load_or_issue_reuses_a_fresh_stored_identity(tmp_path: Path, clock: FakeClock) -> None:
    ca = CertificateAuthority.ephemeral("voxmesh.local", clock=clock)
    renew = local_renewer(ca, "worker", ttl_s=3000)
    first = await ReloadableIdentity.load_or_issue(tmp_path, renew, clock=clock)
    again = await ReloadableIdentity.load_or_issue(tmp_path, renew, clock=clock)
    assert again.current.cert == first.current.cert
    clock.advance(2500)
    later = await ReloadableIdentity.load_or_issue(tmp_path, renew, clock=clock)
    assert later.current.cert != first.current.cert


async def test_renewal_that_changes_identity_is_refused(tmp_path: Path, clock: FakeClock) -> None:
    ca = CertificateAuthority.ephemeral("voxmesh.local", clock=clock)
    ident = await ReloadableIdentity.load_or_issue(tmp_path, local_renewer(ca, "worker", ttl_s=30), clock=clock)
    ident._renew = local_renewer(ca, "gateway", ttl_s=30)
    with pytest.raises(ValueError, match="changed the identity"):
        await ident.rotate()
