"""The guard: modes, credentials, scopes, the admission seam, the audit log, the bind check."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.authkit import AUDIENCE, HS_SECRET, ISSUER, Signer

from voxmesh.auth.audit import AuditLog
from voxmesh.auth.errors import MissingScope, Unauthenticated
from voxmesh.auth.guard import Call, Guard, api_key_from_body, check_bind
from voxmesh.auth.principal import ANONYMOUS, OPEN, Principal
from voxmesh.auth.store import TenantStore
from voxmesh.errors import ConfigError, Forbidden, QuotaExceeded
from voxmesh.settings import Settings

SIGNER = Signer()
SPEECH = ("POST", "/v1/audio/speech")


def _settings(tmp_path: Path, mode: str = "jwt+api_keys", **gateway: object) -> Settings:
    return Settings(data_dir=tmp_path, auth={"mode": mode, "hs256_secret": HS_SECRET, "issuer": ISSUER,
                                             "audience": AUDIENCE}, gateway=gateway)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[TenantStore]:
    s = await TenantStore.open(f"sqlite+aiosqlite:///{tmp_path / 'meta.db'}")
    yield s
    await s.close()


def _call(route: tuple[str, str] = SPEECH, auth: str | None = None, remote: str = "10.0.0.9",
          api_key: str | None = None) -> Call:
    return Call(route[0], route[1], route[1], remote, auth, api_key)


async def test_mode_none_opens_everything_but_admin_off_loopback(tmp_path: Path) -> None:
    g = Guard(_settings(tmp_path, "none"))
    assert await g.check(_call()) is OPEN
    assert await g.check(_call(auth="garbage")) is OPEN  # no credential is looked at
    assert await g.check(_call(("PUT", "/admin/splits/{model}"), remote="127.0.0.1")) is OPEN
    with pytest.raises(Forbidden):
        await g.check(_call(("PUT", "/admin/splits/{model}"), remote="10.0.0.9"))


async def test_mode_none_with_an_admin_token(tmp_path: Path) -> None:
    g = Guard(_settings(tmp_path, "none", admin_token="t0ken-for-admins"))
    admin = ("GET", "/admin/topology")
    assert await g.check(_call(admin, auth="Bearer t0ken-for-admins", remote="10.0.0.9")) is OPEN
    for auth in (None, "Bearer wrong"):
        with pytest.raises(Unauthenticated):
            await g.check(_call(admin, auth=auth, remote="127.0.0.1"))


async def test_jwt_credentials_scopes_and_challenges(tmp_path: Path, store: TenantStore) -> None:
    g = Guard(_settings(tmp_path), store=store)
    p = await g.check(_call(auth=f"Bearer {SIGNER.token(alg='HS256')}"))
    assert (p.tenant, p.credential) == ("acme", "jwt")
    with pytest.raises(Unauthenticated) as missing:
        await g.check(_call())
    assert missing.value.headers() == {"WWW-Authenticate": 'Bearer realm="voxmesh"'}
    for bad in ("Basic dXNlcjpwYXNz", "Bearer", "Bearer a b", "Bearer not-a-token"):
        with pytest.raises(Unauthenticated) as info:
            await g.check(_call(auth=bad))
        assert 'error="invalid_token"' in info.value.headers()["WWW-Authenticate"]
    with pytest.raises(MissingScope) as scope:
        await g.check(_call(("GET", "/v1/jobs"), auth=f"Bearer {SIGNER.token(alg='HS256')}"))
    assert scope.value.status == 403 and 'scope="jobs:read"' in scope.value.headers()["WWW-Authenticate"]
    # any credential will do for /v1/models; none is needed for health
    assert (await g.check(_call(("GET", "/v1/models"), auth=f"Bearer {SIGNER.token(alg='HS256', scope='')}"))).tenant == "acme"
    assert await g.check(_call(("GET", "/healthz"))) is ANONYMOUS
    assert await g.check(_call(("GET", "/v1/objects/{key}"))) is ANONYMOUS


async def test_api_keys_header_body_revocation_and_tenant_switch(tmp_path: Path, store: TenantStore) -> None:
    g = Guard(_settings(tmp_path, "api_keys"), store=store)
    rec, key = await store.create_key("acme", frozenset({"mt:translate", "tts:speak"}))
    p = await g.check(_call(auth=f"Bearer {key}"))
    assert p == Principal("acme", f"key:{rec.id}", frozenset({"mt:translate", "tts:speak"}), "api_key")
    translate = ("POST", "/translate")
    assert (await g.check(_call(translate, api_key=key))).tenant == "acme"  # LibreTranslate's body field
    with pytest.raises(Unauthenticated):
        await g.check(_call(api_key=key))  # only translation routes read a body key
    with pytest.raises(Unauthenticated):
        await g.check(_call(auth=f"Bearer {key[:-1]}x"))  # right id, wrong secret
    with pytest.raises(Unauthenticated):
        await g.check(_call(auth=f"Bearer {SIGNER.token(alg='HS256')}"))  # JWTs are not accepted in api_keys mode
    await store.update_tenant("acme", disabled=True)
    with pytest.raises(Unauthenticated):
        await g.check(_call(auth=f"Bearer {key}"))
    await store.update_tenant("acme", disabled=False)
    assert (await g.check(_call(auth=f"Bearer {key}"))).tenant == "acme"
    await store.revoke_key(rec.id)
    with pytest.raises(Unauthenticated) as info:
        await g.check(_call(auth=f"Bearer {key}"))
    assert info.value.reason == "invalid_key"


async def test_a_disabled_tenant_is_refused_whatever_its_credential(tmp_path: Path, store: TenantStore) -> None:
    g = Guard(_settings(tmp_path), store=store)
    token = f"Bearer {SIGNER.token(alg='HS256', tenant='initech')}"
    assert (await g.check(_call(auth=token))).tenant == "initech"  # no tenant row: defaults, enabled
    await store.create_tenant("initech")
    await store.update_tenant("initech", disabled=True)
    with pytest.raises(Forbidden, match="disabled"):
        await g.check(_call(auth=token))


async def test_expired_key_and_key_in_jwt_mode(tmp_path: Path, store: TenantStore) -> None:
    _, old = await store.create_key("acme", frozenset({"tts:speak"}), expires_in_s=-1.0)
    g = Guard(_settings(tmp_path, "api_keys"), store=store)
    with pytest.raises(Unauthenticated):
        await g.check(_call(auth=f"Bearer {old}"))
    _, key = await store.create_key("acme", frozenset({"tts:speak"}))
    with pytest.raises(Unauthenticated) as info:
        await Guard(_settings(tmp_path, "jwt"), store=store).check(_call(auth=f"Bearer {key}"))
    assert info.value.reason == "key_mode"


async def test_internal_key_and_admin_token(tmp_path: Path) -> None:
    g = Guard(_settings(tmp_path, "jwt", admin_token="admin-secret-123"), internal_key="vxi_" + "a" * 64)
    p = await g.check(_call(auth="Bearer vxi_" + "a" * 64))
    assert p.credential == "internal" and p.scopes == {"tts:speak", "mt:translate"}
    with pytest.raises(Unauthenticated):
        await g.check(_call(auth="Bearer vxi_" + "b" * 64))
    with pytest.raises(MissingScope):
        await g.check(_call(("GET", "/v1/jobs"), auth="Bearer vxi_" + "a" * 64))
    admin = await g.check(_call(("GET", "/admin/topology"), auth="Bearer admin-secret-123"))
    assert admin.credential == "admin_token" and admin.scopes == {"admin"}


async def test_admission_hooks_run_once_after_authorization(tmp_path: Path) -> None:
    g = Guard(_settings(tmp_path, "jwt"))
    seen: list[tuple[str, str]] = []

    async def limiter(principal: Principal, call: Call) -> None:
        seen.append((principal.tenant, call.path))
        if principal.tenant == "noisy":
            raise QuotaExceeded("slow down", retry_after=2)

    g.hooks.append(limiter)
    await g.check(_call(auth=f"Bearer {SIGNER.token(alg='HS256')}"))
    with pytest.raises(QuotaExceeded):
        await g.check(_call(auth=f"Bearer {SIGNER.token(alg='HS256', tenant='noisy')}"))
    with pytest.raises(Unauthenticated):
        await g.check(_call())
    await g.check(_call(("GET", "/healthz")))
    assert seen == [("acme", "/v1/audio/speech"), ("noisy", "/v1/audio/speech")]  # not for refused or public calls


async def test_audit_records_failures_and_admin_actions_without_secrets(tmp_path: Path, store: TenantStore) -> None:
    audit = AuditLog(tmp_path / "audit.log")
    g = Guard(_settings(tmp_path), store=store, audit=audit)
    _, key = await store.create_key("acme", frozenset({"jobs:read"}))
    token = SIGNER.token(alg="HS256", exp_in=-3600)
    for auth in (f"Bearer {token}", f"Bearer {key}", f"Bearer {key[:-2]}zz", None):
        with pytest.raises((Unauthenticated, MissingScope)):
            await g.check(_call(auth=auth))
    admin = await g.check(_call(("GET", "/admin/keys"), auth=f"Bearer {SIGNER.token(alg='HS256', scope='admin')}"))
    g.record_admin(admin, _call(("GET", "/admin/keys")), 200)
    text = (tmp_path / "audit.log").read_text()
    lines = [json.loads(line) for line in text.splitlines()]
    assert [e["event"] for e in lines] == ["auth_failure"] * 4 + ["admin"]
    assert [e.get("reason") for e in lines[:4]] == ["expired", "scope", "invalid_key", "missing"]
    assert lines[1]["tenant"] == "acme" and lines[4]["outcome"] == 200
    for secret in (token, key, key.split("_", 2)[2], HS_SECRET, token.split(".")[2]):
        assert secret not in text


def test_startup_refuses_mode_none_on_a_public_bind(tmp_path: Path) -> None:
    check_bind(Settings(server={"host": "127.0.0.1"}))
    check_bind(Settings(server={"host": "::1"}))
    with pytest.raises(ConfigError, match="VOXMESH_AUTH__MODE") as info:
        check_bind(Settings(server={"host": "0.0.0.0"}))
    assert "\n" not in info.value.message
    check_bind(Settings(server={"host": "0.0.0.0"}, auth={"allow_insecure_none": True}))
    check_bind(Settings(server={"host": "0.0.0.0"}, auth={"mode": "jwt", "hs256_secret": HS_SECRET}))


def test_api_key_from_body() -> None:
    assert api_key_from_body("application/json", b'{"q": "hi", "api_key": "vxk_x"}') == "vxk_x"
    assert api_key_from_body("application/x-www-form-urlencoded", b"q=hi&api_key=vxk_y&target=de") == "vxk_y"
    assert api_key_from_body("application/json", b"[1, 2]") is None
    assert api_key_from_body("application/json", b"{broken") is None
    assert api_key_from_body("text/plain", b"api_key=vxk_z") is None


def test_audit_log_limits_floods_of_failures_but_never_admin_actions(tmp_path: Path) -> None:
    now = [0.0]
    audit = AuditLog(tmp_path / "a.log", clock=lambda: now[0], per_s=2.0, burst=3.0)
    for _ in range(10):
        audit.record("auth_failure", "denied", what="POST /v1/audio/speech", reason="invalid_key")
    audit.record("admin", 200, what="GET /admin/keys", subject="ops")
    now[0] = 1.0  # two more tokens
    audit.record("auth_failure", "denied", what="POST /v1/audio/speech", reason="missing")
    lines = [json.loads(line) for line in (tmp_path / "a.log").read_text().splitlines()]
    assert [e["event"] for e in lines] == ["auth_failure"] * 3 + ["admin", "auth_failure"]
    assert lines[3]["suppressed"] == 7 and "suppressed" not in lines[4]
