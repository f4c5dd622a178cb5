"""A gallery's count of event rows, kept on its row.

Every registration checked the gallery's free slots by counting its event rows, and
every gallery read and event listing counted them too: 35-60 ms at a million rows on
SQLite, under the write lock. The count now lives on the gallery row, updated in the
transaction that adds or removes rows (which holds the gallery lock).

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
    with op.batch_alter_table("galleries") as batch:
        batch.add_column(
            sa.Column("event_rows", sa.BigInteger(), nullable=False, server_default="0")
        )
    op.execute(
        "UPDATE galleries SET event_rows ="
        " (SELECT COUNT(*) FROM events WHERE events.gallery_id = galleries.id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("galleries") as batch:
        batch.drop_column("event_rows")
