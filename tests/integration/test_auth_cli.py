"""``voxmesh keys`` and ``voxmesh tenants`` against the data dir's SQLite and against
PostgreSQL (``jobs.db_url``), then the printed key checked by the guard on the same DB."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from voxmesh.auth.guard import Call, Guard
from voxmesh.auth.store import TenantStore
from voxmesh.cli import main
from voxmesh.settings import Settings


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str | None:
    if request.param == "sqlite":
        return None
    url: str = request.getfixturevalue("pg_url")
    monkeypatch.setenv("VOXMESH_JOBS__DB_URL", url)
    return url


async def _guard_check(settings: Settings, url: str, key: str, path: str = "/v1/audio/speech") -> str:
    store = await TenantStore.open(url)
    try:
        call = Call("POST", path, path, "127.0.0.1", f"Bearer {key}")
        return (await Guard(settings, store=store).check(call)).tenant
    finally:
        await store.close()


def test_keys_and_tenants_cli(db_url: str | None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import asyncio

    data = tmp_path / "data"
    dd = ["--data-dir", str(data)]
    assert main(["tenants", "create", "acme", "--requests-per-minute", "600", *dd]) == 0
    assert json.loads(capsys.readouterr().out)["requests_per_minute"] == 600
    assert main(["keys", "create", "--tenant", "acme", "--scopes", "tts:speak mt:translate", "--name", "ci", *dd]) == 0
    out, err = capsys.readouterr()
    key = out.strip()
    assert key.startswith("vxk_") and "\n" not in key and "shown only this once" in err
    key_id = key.split("_")[1]
    assert main(["keys", "ls", "--json", *dd]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(k["id"], k["tenant"], k["scopes"]) for k in listed] == [(key_id, "acme", "mt:translate tts:speak")]
    assert key.split("_", 2)[2] not in json.dumps(listed)
    assert main(["tenants", "set", "acme", "--chars-per-day", "1000", "--requests-per-minute", "default", *dd]) == 0
    row = json.loads(capsys.readouterr().out)
    assert (row["chars_per_day"], row["requests_per_minute"]) == (1000, None)
    assert main(["tenants", "ls", *dd]) == 0
    assert "acme" in capsys.readouterr().out

    settings = Settings(data_dir=data, auth={"mode": "api_keys"})
    url = db_url or settings.db_url()
    assert asyncio.run(_guard_check(settings, url, key)) == "acme"

    assert main(["keys", "create", "--tenant", "acme", "--scopes", "everything", *dd]) == 1
    assert "unknown scopes" in capsys.readouterr().err
    assert main(["keys", "revoke", key_id, *dd]) == 0
    assert main(["keys", "revoke", "ffffffffffff", *dd]) == 1
    capsys.readouterr()
    from voxmesh.auth.errors import Unauthenticated

    with pytest.raises(Unauthenticated):
        asyncio.run(_guard_check(settings, url, key))
    audit = (data / "audit.log").read_text()
    assert audit.count('"event": "admin"') == 8 and key not in audit
