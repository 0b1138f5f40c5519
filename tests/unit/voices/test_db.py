from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect

from voxmesh.storage.engine import create_engine
from voxmesh.storage.migrate import migrate
from voxmesh.voices.db import voices


async def test_migration_0003_creates_the_voices_table_as_declared(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    await migrate(engine)
    async with engine.connect() as conn:
        cols = await conn.run_sync(lambda c: {col["name"] for col in inspect(c).get_columns("voices")})
        indexes = await conn.run_sync(lambda c: {i["name"] for i in inspect(c).get_indexes("voices")})
    await engine.dispose()
    assert cols == {c.name for c in voices.columns}
    assert "ix_voices_tenant" in indexes
