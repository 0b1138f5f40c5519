"""Enrolled voices (voxmesh.voices.db): one row per tenant-owned voice.

Revision ID: 0003
Revises: 0001 (re-chained after 0002 when branches merge)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "voices",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("language", sa.String(16)),
        sa.Column("transcript", sa.Text),
        sa.Column("consent_at", sa.Float, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("stage", sa.String(16)),
        sa.Column("progress", sa.Float, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("audio_key", sa.String(512), nullable=False),
        sa.Column("embedding_key", sa.String(512)),
        sa.Column("style", sa.Text),
        sa.Column("clip", sa.Text, nullable=False),
        sa.Column("report", sa.Text),
        sa.Column("error", sa.Text),
    )
    op.create_index("ix_voices_tenant", "voices", ["tenant", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_voices_tenant", table_name="voices")
    op.drop_table("voices")
