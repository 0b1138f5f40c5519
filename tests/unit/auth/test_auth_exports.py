"""The public surface of voxmesh.auth is what we mean it to be."""

from __future__ import annotations

import importlib

import pytest

EXPECTED = {
    "voxmesh.auth.principal": ["ANONYMOUS", "DEFAULT_TENANT", "OPEN", "Principal"],
    "voxmesh.auth.guard": ["INTERNAL_PREFIX", "ON_BEHALF_HEADER", "AdmissionHook", "Call", "Guard", "SettleHook", "api_key_from_body", "check_bind",
                           "is_loopback", "load_internal_key"],
    "voxmesh.auth.errors": ["MissingScope", "Unauthenticated"],
    "voxmesh.auth.jwt": ["TENANT_RE", "JwksCache", "JwtVerifier", "fetch_url"],
    "voxmesh.auth.keys": ["KEY_PREFIX", "ParsedKey", "hash_key", "matches", "new_key", "parse_key"],
    "voxmesh.auth.store": ["LIMIT_FIELDS", "ApiKey", "Tenant", "TenantStore", "check_scopes", "check_tenant"],
    "voxmesh.auth.audit": ["AuditLog"],
    "voxmesh.auth.aiohttp": ["auth_middleware", "install_guard"],
    "voxmesh.auth.routes": ["setup_admin_routes"],
    "voxmesh.auth.wiring": ["AuthWiring", "audit_path", "open_auth"],
    "voxmesh.auth.cli": ["add_parser"],
}


@pytest.mark.parametrize("module", sorted(EXPECTED))
def test_exports(module: str) -> None:
    mod = importlib.import_module(module)
    assert sorted(mod.__all__) == sorted(EXPECTED[module])
    for name in mod.__all__:
        assert hasattr(mod, name), name


def test_keys_never_show_their_secret() -> None:
    from voxmesh.auth.keys import new_key, parse_key

    key_id, key = new_key()
    parsed = parse_key(key)
    assert parsed is not None and parsed.id == key_id and key.split("_", 2)[2] not in repr(parsed)
    assert parse_key(key + "x") is None and parse_key("vxk_" + key_id) is None
