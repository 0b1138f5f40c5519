"""Tenants and API keys; every job belongs to a tenant (existing jobs to "default").

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("requests_per_minute", sa.Integer),
        sa.Column("chars_per_day", sa.BigInteger),
        sa.Column("audio_seconds_per_month", sa.BigInteger),
        sa.Column("concurrent_jobs", sa.Integer),
        sa.Column("max_job_chars", sa.BigInteger),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("tenant", sa.String(64), sa.ForeignKey("tenants.name", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("scopes", sa.Text, nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float),
        sa.Column("revoked_at", sa.Float),
    )
    op.create_index("ix_api_keys_tenant", "api_keys", ["tenant"])
    op.add_column("jobs", sa.Column("tenant", sa.String(64), nullable=False, server_default="default"))
    op.create_index("ix_jobs_tenant_seq", "jobs", ["tenant", "seq"])


def downgrade() -> None:
    op.drop_index("ix_jobs_tenant_seq", table_name="jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("tenant")
    op.drop_table("api_keys")
    op.drop_table("tenants")
