"""Initial schema: jobs and chunks (the dead-letter reason is kept on the chunk).

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("seq", _BigInt, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(32), nullable=False, unique=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("started_at", sa.Float),
        sa.Column("finished_at", sa.Float),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("voice", sa.String(200), nullable=False),
        sa.Column("response_format", sa.String(8), nullable=False),
        sa.Column("options", sa.Text, nullable=False),
        sa.Column("source_name", sa.String(255)),
        sa.Column("chunks_total", sa.Integer, nullable=False),
        sa.Column("chars_total", sa.Integer, nullable=False),
        sa.Column("chapters", sa.Text, nullable=False),
        sa.Column("result_key", sa.String(512)),
        sa.Column("chapters_key", sa.String(512)),
        sa.Column("duration_s", sa.Float),
        sa.Column("error", sa.Text),
        sa.Column("webhook_url", sa.Text),
        sa.Column("webhook_sent", sa.Boolean, nullable=False),
    )
    op.create_index("ix_jobs_state", "jobs", ["state"])
    op.create_table(
        "chunks",
        sa.Column("id", _BigInt, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(32), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("idx", sa.Integer, nullable=False),
        sa.Column("chapter", sa.Integer, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("chars", sa.Integer, nullable=False),
        sa.Column("cache_key", sa.String(64), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("synth_calls", sa.Integer, nullable=False),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("lease_expires_at", sa.Float),
        sa.Column("next_attempt_at", sa.Float, nullable=False),
        sa.Column("audio_key", sa.String(512)),
        sa.Column("samples", sa.Integer),
        sa.Column("sample_rate", sa.Integer),
        sa.Column("error", sa.Text),
        sa.UniqueConstraint("job_id", "idx", name="uq_chunks_job_idx"),
    )
    op.create_index("ix_chunks_state_next", "chunks", ["state", "next_attempt_at"])


def downgrade() -> None:
    op.drop_table("chunks")
    op.drop_table("jobs")
