"""The initial schema: tenants, galleries, applications, tags, subjects, events, changes.

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

# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
AUTO_BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("access_key_id", sa.String(), nullable=False),
        sa.Column("secret_ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tenants"),
        sa.UniqueConstraint("name", name="uq_tenants_name"),
        sa.UniqueConstraint("access_key_id", name="uq_tenants_access_key_id"),
    )
    op.create_table(
        "galleries",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("tenant_id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("description", sa.String(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("face_minimum_quality_score", sa.Float(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_galleries"),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name="fk_galleries_tenant_id_tenants",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("tenant_id", "name", name="uq_galleries_tenant_id_name"),
    )
    op.create_table(
        "applications",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("tenant_id", sa.String(), nullable=False),
        sa.Column("gallery_id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("description", sa.String(), nullable=False),
        sa.Column("api_key_hash", sa.LargeBinary(), nullable=False),
        sa.Column("api_key_hint", sa.String(), nullable=False),
        sa.Column("face_minimum_quality_score", sa.Float(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_applications"),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name="fk_applications_tenant_id_tenants",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["gallery_id"],
            ["galleries.id"],
            name="fk_applications_gallery_id_galleries",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("api_key_hash", name="uq_applications_api_key_hash"),
    )
    op.create_index("ix_applications_tenant_id_name", "applications", ["tenant_id", "name"])
    op.create_index("ix_applications_gallery_id", "applications", ["gallery_id"])
    op.create_table(
        "tags",
        sa.Column("gallery_id", sa.String(), nullable=False),
        sa.Column("bit", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("gallery_id", "bit", name="pk_tags"),
        sa.UniqueConstraint("gallery_id", "name", name="uq_tags_gallery_id_name"),
        sa.CheckConstraint("bit >= 0 AND bit <= 63", name="ck_tags_bit_range"),
        sa.ForeignKeyConstraint(
            ["gallery_id"],
            ["galleries.id"],
            name="fk_tags_gallery_id_galleries",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "subjects",
        sa.Column("gallery_id", sa.String(), nullable=False),
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("gallery_id", "id", name="pk_subjects"),
        sa.ForeignKeyConstraint(
            ["gallery_id"],
            ["galleries.id"],
            name="fk_subjects_gallery_id_galleries",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "events",
        sa.Column("row_id", AUTO_BIGINT, autoincrement=True, nullable=False),
        sa.Column("gallery_id", sa.String(), nullable=False),
        sa.Column("event_id", sa.String(), nullable=False),
        sa.Column("subject_id", sa.String(), nullable=False),
        sa.Column("status", sa.CHAR(1), nullable=False),
        sa.Column("tag_mask", sa.BigInteger(), nullable=False),
        sa.Column("model_id", sa.String(), nullable=False),
        sa.Column("template", sa.LargeBinary(), nullable=False),
        sa.Column("attributes_json", sa.Text(), nullable=False),
        sa.Column("last_updated_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("row_id", name="pk_events"),
        sa.CheckConstraint("status IN ('A', 'D')", name="ck_events_status_values"),
        sa.ForeignKeyConstraint(
            ["gallery_id"],
            ["galleries.id"],
            name="fk_events_gallery_id_galleries",
            ondelete="CASCADE",
        ),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_events_gallery_id_last_updated_ms_row_id",
        "events",
        ["gallery_id", "last_updated_ms", "row_id"],
    )
    op.create_index(
        "ix_events_gallery_id_subject_id_status", "events", ["gallery_id", "subject_id", "status"]
    )
    op.create_index(
        "ix_events_gallery_id_event_id_status", "events", ["gallery_id", "event_id", "status"]
    )
    op.create_index(
        "uq_events_active_event",
        "events",
        ["gallery_id", "event_id"],
        unique=True,
        sqlite_where=sa.text("status = 'A'"),
        postgresql_where=sa.text("status = 'A'"),
    )
    op.create_table(
        "changes",
        sa.Column("id", AUTO_BIGINT, autoincrement=True, nullable=False),
        sa.Column("gallery_id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("event_id", sa.String(), nullable=True),
        sa.Column("bit", sa.Integer(), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_changes"),
        sa.CheckConstraint(
            "kind IN ('event', 'clear_tag_bit', 'drop_gallery')", name="ck_changes_kind_values"
        ),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    for table in ("changes", "events", "subjects", "tags", "applications", "galleries", "tenants"):
        op.drop_table(table)
