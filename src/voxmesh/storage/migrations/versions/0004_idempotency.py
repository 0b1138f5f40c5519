"""Idempotent job submission: a job keeps its Idempotency-Key (unique per tenant) and the
fingerprint of the request that used it (voxmesh.jobs.idempotency).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("idempotency_key", sa.String(255)))
    op.add_column("jobs", sa.Column("request_hash", sa.String(64)))
    # NULLs never collide (PostgreSQL and SQLite alike): jobs without a key are unconstrained
    op.create_index("ux_jobs_tenant_idempotency_key", "jobs", ["tenant", "idempotency_key"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_jobs_tenant_idempotency_key", table_name="jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("request_hash")
        batch.drop_column("idempotency_key")
