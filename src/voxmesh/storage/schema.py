"""Tables of the metadata DB (SQLAlchemy Core) and the frozen rows read from them.

The migration in ``migrations/versions`` creates exactly these tables; a test checks the two
agree. Times are wall-clock epoch seconds (floats) because leases are compared across
processes and machines. JSON columns are TEXT for portability (SQLite and PostgreSQL alike).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from voxmesh.jobs.lifecycle import ChunkState, JobState

__all__ = ["REQUEST_ID_KEY", "ChunkRow", "JobRow", "api_keys", "chunks", "jobs", "metadata", "tenants"]

# The submission's request id rides in the job's ``options`` JSON under this key (no migration);
# :meth:`JobRow.from_row` takes it out again, so it never reaches a worker or a cache key.
REQUEST_ID_KEY = "__request_id__"

metadata = MetaData()
_BigInt = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER only

jobs = Table(
    "jobs",
    metadata,
    Column("seq", _BigInt, primary_key=True, autoincrement=True),
    Column("id", String(32), nullable=False, unique=True),
    Column("state", String(16), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float),
    Column("finished_at", Float),
    Column("model", String(200), nullable=False),
    Column("voice", String(200), nullable=False),
    Column("response_format", String(8), nullable=False),
    Column("options", Text, nullable=False),
    Column("source_name", String(255)),
    Column("chunks_total", Integer, nullable=False),
    Column("chars_total", Integer, nullable=False),
    Column("chapters", Text, nullable=False),
    Column("result_key", String(512)),
    Column("chapters_key", String(512)),
    Column("duration_s", Float),
    Column("error", Text),
    Column("webhook_url", Text),
    Column("webhook_sent", Boolean, nullable=False, default=False),
    Column("tenant", String(64), nullable=False, server_default="default"),  # 0002
    Column("idempotency_key", String(255)),  # 0004: the submission's Idempotency-Key (jobs/idempotency.py)
    Column("request_hash", String(64)),  # 0004: fingerprint of the request that used the key
    Index("ix_jobs_state", "state"),
    Index("ix_jobs_tenant_seq", "tenant", "seq"),
    Index("ux_jobs_tenant_idempotency_key", "tenant", "idempotency_key", unique=True),
)

chunks = Table(
    "chunks",
    metadata,
    Column("id", _BigInt, primary_key=True, autoincrement=True),
    Column("job_id", String(32), ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    Column("idx", Integer, nullable=False),
    Column("chapter", Integer, nullable=False),
    Column("text", Text, nullable=False),
    Column("chars", Integer, nullable=False),
    Column("cache_key", String(64), nullable=False),
    Column("state", String(10), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("synth_calls", Integer, nullable=False, default=0),
    Column("lease_owner", String(64)),
    Column("lease_expires_at", Float),
    Column("next_attempt_at", Float, nullable=False, default=0.0),
    Column("audio_key", String(512)),
    Column("samples", Integer),
    Column("sample_rate", Integer),
    Column("error", Text),
    UniqueConstraint("job_id", "idx", name="uq_chunks_job_idx"),
    Index("ix_chunks_state_next", "state", "next_attempt_at"),
)

# 0002: tenants and their API keys (voxmesh.auth.store). A NULL limit means "the default".
tenants = Table(
    "tenants",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("created_at", Float, nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("requests_per_minute", Integer),
    Column("chars_per_day", BigInteger),
    Column("audio_seconds_per_month", BigInteger),
    Column("concurrent_jobs", Integer),
    Column("max_job_chars", BigInteger),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("tenant", String(64), ForeignKey("tenants.name", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("scopes", Text, nullable=False),  # space-separated
    Column("secret_hash", String(64), nullable=False),  # sha256 hex of the whole key
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float),
    Column("revoked_at", Float),
    Index("ix_api_keys_tenant", "tenant"),
)


@dataclass(frozen=True)
class JobRow:
    seq: int
    id: str
    state: JobState
    created_at: float
    started_at: float | None
    finished_at: float | None
    model: str
    voice: str
    response_format: str
    options: dict[str, Any]
    source_name: str | None
    chunks_total: int
    chars_total: int
    chapters: list[dict[str, Any]]
    result_key: str | None
    chapters_key: str | None
    duration_s: float | None
    error: str | None
    webhook_url: str | None
    webhook_sent: bool
    tenant: str
    request_id: str | None = None  # the submission's X-Request-Id (kept in the options JSON)
    idempotency_key: str | None = None
    request_hash: str | None = None

    @classmethod
    def from_row(cls, row: Any) -> JobRow:
        m = dict(row._mapping)
        m["state"] = JobState(m["state"])
        m["options"] = json.loads(m["options"])
        m["request_id"] = m["options"].pop(REQUEST_ID_KEY, None)
        m["chapters"] = json.loads(m["chapters"])
        m["webhook_sent"] = bool(m["webhook_sent"])
        return cls(**m)

    @property
    def trace_id(self) -> str:
        """The id the job's own traffic carries: the submission's request id, or ``job-<id>``
        for a job submitted without one (the CLI, or before ids were kept)."""
        return self.request_id or f"job-{self.id}"


@dataclass(frozen=True)
class ChunkRow:
    id: int
    job_id: str
    idx: int
    chapter: int
    text: str
    chars: int
    cache_key: str
    state: ChunkState
    attempts: int
    synth_calls: int
    lease_owner: str | None
    lease_expires_at: float | None
    next_attempt_at: float
    audio_key: str | None
    samples: int | None
    sample_rate: int | None
    error: str | None

    @classmethod
    def from_row(cls, row: Any) -> ChunkRow:
        m = dict(row._mapping)
        m["state"] = ChunkState(m["state"])
        return cls(**m)
