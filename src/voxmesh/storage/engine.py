"""Create the async SQLAlchemy engine with the settings each database needs.

SQLite (aiosqlite): WAL journal so readers never block the writer, ``synchronous=NORMAL``
(durable at each checkpoint, safe against process crashes), a 30 s busy timeout so several
runner processes can share one file, and foreign keys on. An in-memory URL uses one shared
connection (StaticPool) so every session sees the same database.
PostgreSQL (asyncpg): pre-ping pooled connections so a restarted server is survived.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

__all__ = ["create_engine"]


def create_engine(url: str) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_async_engine(url, pool_pre_ping=True)
    memory = not parsed.database or parsed.database == ":memory:"
    kwargs: dict[str, Any] = {"connect_args": {"timeout": 30}}
    if memory:
        kwargs["poolclass"] = StaticPool
    engine = create_async_engine(url, **kwargs)

    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        if not memory:
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    return engine
