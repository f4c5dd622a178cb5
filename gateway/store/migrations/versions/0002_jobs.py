"""Bulk registration: bulk_sources, jobs, job_records.

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
        "bulk_sources",
        sa.Column("gallery_id", sa.String(), nullable=False),
        sa.Column("uri", sa.String(), nullable=False),
        sa.Column("endpoint_url", sa.String(), nullable=False),
        sa.Column("region", sa.String(), nullable=False),
        sa.Column("access_key_id", sa.String(), nullable=False),
        sa.Column("secret_ciphertext", sa.LargeBinary(), nullable=True),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("gallery_id", name="pk_bulk_sources"),
        sa.ForeignKeyConstraint(
            ["gallery_id"],
            ["galleries.id"],
            name="fk_bulk_sources_gallery_id_galleries",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("gallery_id", sa.String(), nullable=False),
        sa.Column("application_id", sa.String(), nullable=False),
        sa.Column("source_uri", sa.String(), nullable=False),
        sa.Column("source_endpoint_url", sa.String(), nullable=False),
        sa.Column("source_region", sa.String(), nullable=False),
        sa.Column("source_access_key_id", sa.String(), nullable=False),
        sa.Column("source_secret_ciphertext", sa.LargeBinary(), nullable=True),
        sa.Column("record_count", sa.Integer(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_claim_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
        sa.ForeignKeyConstraint(
            ["gallery_id"],
            ["galleries.id"],
            name="fk_jobs_gallery_id_galleries",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_jobs_gallery_id", "jobs", ["gallery_id"])
    op.create_table(
        "job_records",
        sa.Column("job_id", sa.String(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("filename", sa.String(), nullable=False),
        sa.Column("tag_mask", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("status", sa.CHAR(1), nullable=False, server_default=sa.text("'N'")),
        sa.Column("register_status", sa.String(), nullable=False, server_default=sa.text("''")),
        sa.Column("reason", sa.Text(), nullable=False, server_default=sa.text("''")),
        sa.Column("subject_id", sa.String(), nullable=False, server_default=sa.text("''")),
        sa.Column("event_id", sa.String(), nullable=False, server_default=sa.text("''")),
        sa.Column("attributes_json", sa.Text(), nullable=False, server_default=sa.text("''")),
        sa.Column("next_attempt_ms", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
        sa.Column("lease_until_ms", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
        sa.Column("processed_ms", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
        sa.PrimaryKeyConstraint("job_id", "seq", name="pk_job_records"),
        sa.UniqueConstraint("id", name="uq_job_records_id"),
        sa.CheckConstraint("status IN ('N', 'P')", name="ck_job_records_status_values"),
        sa.CheckConstraint(
            "register_status IN ('', 'Success', 'Failed')",
            name="ck_job_records_register_status_values",
        ),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["jobs.id"],
            name="fk_job_records_job_id_jobs",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_job_records_job_id_status_seq", "job_records", ["job_id", "status", "seq"])


def downgrade() -> None:
    for table in ("job_records", "jobs", "bulk_sources"):
        op.drop_table(table)
