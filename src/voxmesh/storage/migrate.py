"""Run the alembic migrations programmatically: ``await migrate(url)`` at start-up.

Safe to call from many processes at once: PostgreSQL takes an advisory transaction lock,
SQLite an ``flock`` on ``<db>.migrate.lock`` next to the database file, so exactly one
process upgrades and the others then find the schema at head.
"""

from __future__ import annotations

import asyncio
import fcntl
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from voxmesh.storage.engine import create_engine

__all__ = ["HEAD", "migrate"]

HEAD = "0003"
_DIR = Path(__file__).parent / "migrations"
_PG_LOCK_ID = 0x766F786D  # "voxm"


def _upgrade(conn: Connection) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(_DIR))
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, "head")


async def _run(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_ID})
        await conn.run_sync(_upgrade)


async def migrate(target: str | AsyncEngine) -> None:
    """Upgrade the database at ``target`` (a URL, or an engine to reuse) to :data:`HEAD`."""
    if isinstance(target, str):
        engine = create_engine(target)
        try:
            await migrate(engine)
        finally:
            await engine.dispose()
        return
    parsed = target.url
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        lock_path = Path(parsed.database + ".migrate.lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fh = lock_path.open("a")
        try:
            await asyncio.to_thread(fcntl.flock, fh, fcntl.LOCK_EX)
            await _run(target)
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
            fh.close()
    else:
        await _run(target)
