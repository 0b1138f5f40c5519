from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import pytest

from voxmesh.clock import FakeClock
from voxmesh.errors import Forbidden, InvalidRequest, Unauthorized
from voxmesh.mesh.ca import CertificateAuthority
from voxmesh.mesh.certs import generate_key, identity_of, make_csr, spiffe_id
from voxmesh.mesh.join import JoinAuthority
from voxmesh.mesh.tokens import (
    FileTokenStore,
    MemoryTokenStore,
    TokenVerdict,
    check,
    new_token,
    split_token,
)

TD = "voxmesh.local"


def test_token_format_and_split() -> None:
    token, record = new_token(100.0, 60.0, "worker-a")
    prefix, tid, secret = token.split(".")
    assert prefix == "vxj1" and tid == record.token_id and len(secret) >= 40
    assert split_token(token) == (tid, secret)
    assert record.expires_at == 160.0 and record.name == "worker-a"
    assert secret not in record.secret_sha256
    for bad in ("", "vxj1..x", "abc.def.ghi", "vxj1.a.b.c"):
        assert split_token(bad) is None


def test_check_walks_every_rule() -> None:
    token, rec = new_token(0.0, 10.0, "w")
    _, secret = split_token(token)  # type: ignore[misc]
    assert check(rec, secret, "w", 5.0) is TokenVerdict.OK
    assert check(None, secret, "w", 5.0) is TokenVerdict.UNKNOWN
    assert check(rec, "wrong", "w", 5.0) is TokenVerdict.UNKNOWN
    assert check(rec, secret, "w", 10.0) is TokenVerdict.EXPIRED
    assert check(rec, secret, "other", 5.0) is TokenVerdict.WRONG_NAME
    used = rec.__class__(**{**rec.__dict__, "used_at": 1.0, "used_by": "w"})
    assert check(used, secret, "w", 5.0) is TokenVerdict.USED
    assert check(used, "wrong", "w", 5.0) is TokenVerdict.UNKNOWN  # no state leaks without the secret
    unbound = rec.__class__(**{**rec.__dict__, "name": None})
    assert check(unbound, secret, "anything", 5.0) is TokenVerdict.OK


@pytest.mark.parametrize("kind", ["memory", "file"])
def test_store_consumes_once(kind: str, tmp_path: Path) -> None:
    store = MemoryTokenStore() if kind == "memory" else FileTokenStore(tmp_path / "t.json")
    token, rec = new_token(0.0, 10.0)
    store.add(rec)
    _, secret = split_token(token)  # type: ignore[misc]
    assert store.consume(rec.token_id, secret, "w", 1.0)[0] is TokenVerdict.OK
    assert store.consume(rec.token_id, secret, "w", 2.0)[0] is TokenVerdict.USED
    got = store.get(rec.token_id)
    assert got is not None and got.used_by == "w" and got.used_at == 1.0


def test_file_store_keeps_only_hashes_is_private_and_shared_between_instances(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    token, rec = new_token(time.time(), 60.0)
    FileTokenStore(path).add(rec)
    _, secret = split_token(token)  # type: ignore[misc]
    assert secret not in path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert FileTokenStore(path).consume(rec.token_id, secret, "w", time.time())[0] is TokenVerdict.OK
    assert FileTokenStore(path).consume(rec.token_id, secret, "w", time.time())[0] is TokenVerdict.USED


def test_file_store_drops_records_a_day_after_expiry(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path / "t.json")
    old_token, old = new_token(0.0, 10.0)
    fresh_token, fresh = new_token(100_000.0, 10.0)
    store.add(old)
    store.add(fresh)
    store.consume(fresh.token_id, split_token(fresh_token)[1], "w", 100_001.0)  # type: ignore[index]
    ids = [r["token_id"] for r in json.loads((tmp_path / "t.json").read_text())["tokens"]]
    assert ids == [fresh.token_id]
    assert old_token


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(float(int(time.time())))


@pytest.fixture
def authority(clock: FakeClock) -> JoinAuthority:
    return JoinAuthority(CertificateAuthority.ephemeral(TD, clock=clock), token_ttl_s=600, clock=clock)


def _csr(name: str = "worker-a") -> bytes:
    return make_csr(generate_key(), name)


def test_redeem_issues_the_named_identity_once(authority: JoinAuthority) -> None:
    tok = authority.mint()
    assert tok.fingerprint == authority.ca.fingerprint
    issued = authority.redeem(tok.token, _csr(), "worker-a", ["10.0.0.2"])
    assert identity_of(issued.cert) == spiffe_id(TD, "worker-a")
    with pytest.raises(Forbidden, match=r"already used \(by 'worker-a'") as err:
        authority.redeem(tok.token, _csr(), "worker-a")
    assert err.value.status == 403


def test_expired_token_is_401(authority: JoinAuthority, clock: FakeClock) -> None:
    tok = authority.mint(ttl_s=60)
    clock.advance(61)
    with pytest.raises(Unauthorized, match=r"expired at .*mint a new one") as err:
        authority.redeem(tok.token, _csr(), "worker-a")
    assert err.value.status == 401


def test_unknown_or_malformed_token_is_401(authority: JoinAuthority) -> None:
    tok = authority.mint()
    with pytest.raises(Unauthorized, match="not recognised"):
        authority.redeem(tok.token[:-2] + "xx", _csr(), "worker-a")
    with pytest.raises(Unauthorized, match="malformed"):
        authority.redeem("hello", _csr(), "worker-a")


def test_bound_and_reserved_names(authority: JoinAuthority) -> None:
    tok = authority.mint(name="worker-tts-en")
    with pytest.raises(Forbidden, match="is for identity 'worker-tts-en'"):
        authority.redeem(tok.token, _csr(), "worker-mt")
    assert authority.redeem(tok.token, _csr(), "worker-tts-en").spiffe_id.name == "worker-tts-en"
    with pytest.raises(Forbidden, match="reserved"):
        authority.redeem(authority.mint().token, _csr(), "gateway")
    with pytest.raises(Forbidden, match="reserved"):
        authority.mint(name="gateway")


def test_bad_csr_does_not_burn_the_token(authority: JoinAuthority) -> None:
    tok = authority.mint()
    with pytest.raises(InvalidRequest):
        authority.redeem(tok.token, b"not a csr", "worker-a")
    assert authority.redeem(tok.token, _csr(), "worker-a").spiffe_id.name == "worker-a"


def test_renew_issues_only_the_proven_identity(authority: JoinAuthority) -> None:
    with pytest.raises(Unauthorized, match="mTLS"):
        authority.renew(None, _csr())
    with pytest.raises(Forbidden, match="not a member"):
        authority.renew(spiffe_id("other.local", "worker-a"), _csr())
    with pytest.raises(Forbidden, match="reserved"):
        authority.renew(spiffe_id(TD, "gateway"), _csr())
    issued = authority.renew(spiffe_id(TD, "worker-a"), _csr("gateway"))
    assert issued.spiffe_id == spiffe_id(TD, "worker-a")
