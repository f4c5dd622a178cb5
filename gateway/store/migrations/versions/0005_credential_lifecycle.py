"""Credential lifecycle: a tenant's key pairs in their own table, an application's
previous API key.

A tenant held exactly one key pair, on its own row, so rotating it meant downtime. Key
pairs now live in ``access_keys`` (each tenant's existing pair moves there, keeping its
sealed secret: the associated data is the access key id, which does not change), with
when each was last used and revoked. An application keeps the key a regeneration
replaced, and until when it is still accepted.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "access_keys",
        sa.Column("access_key_id", sa.String(), nullable=False),
        sa.Column("tenant_id", sa.String(), nullable=False),
        sa.Column("secret_ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_used_ms", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
        sa.Column("revoked_ms", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
        sa.PrimaryKeyConstraint("access_key_id", name="pk_access_keys"),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name="fk_access_keys_tenant_id_tenants",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_access_keys_tenant_id", "access_keys", ["tenant_id"])
    op.execute(
        "INSERT INTO access_keys (access_key_id, tenant_id, secret_ciphertext, created_ms)"
        " SELECT access_key_id, id, secret_ciphertext, created_ms FROM tenants"
    )
    with op.batch_alter_table("tenants") as batch:
        batch.drop_constraint("uq_tenants_access_key_id", type_="unique")
        batch.drop_column("access_key_id")
        batch.drop_column("secret_ciphertext")
    with op.batch_alter_table("applications") as batch:
        batch.add_column(sa.Column("previous_api_key_hash", sa.LargeBinary(), nullable=True))
        batch.add_column(
            sa.Column(
                "previous_api_key_hint", sa.String(), nullable=False, server_default=sa.text("''")
            )
        )
        batch.add_column(
            sa.Column(
                "previous_api_key_until_ms",
                sa.BigInteger(),
                nullable=False,
                server_default=sa.text("0"),
            )
        )
        batch.create_unique_constraint(
            "uq_applications_previous_api_key_hash", ["previous_api_key_hash"]
        )


def downgrade() -> None:
    """Back to one key pair per tenant: its oldest active one (a tenant whose keys are
    all revoked keeps its oldest); previous API keys are forgotten."""
    with op.batch_alter_table("applications") as batch:
        batch.drop_constraint("uq_applications_previous_api_key_hash", type_="unique")
        batch.drop_column("previous_api_key_until_ms")
        batch.drop_column("previous_api_key_hint")
        batch.drop_column("previous_api_key_hash")
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("access_key_id", sa.String(), nullable=True))
        batch.add_column(sa.Column("secret_ciphertext", sa.LargeBinary(), nullable=True))
    kept = (
        "(SELECT kept.access_key_id FROM access_keys kept WHERE kept.tenant_id = tenants.id"
        " ORDER BY CASE WHEN kept.revoked_ms = 0 THEN 0 ELSE 1 END, kept.created_ms,"
        " kept.access_key_id LIMIT 1)"
    )
    op.execute(
        f"UPDATE tenants SET access_key_id = {kept}, secret_ciphertext ="
        f" (SELECT k.secret_ciphertext FROM access_keys k WHERE k.access_key_id = {kept})"
    )
    with op.batch_alter_table("tenants") as batch:
        batch.alter_column("access_key_id", existing_type=sa.String(), nullable=False)
        batch.alter_column("secret_ciphertext", existing_type=sa.LargeBinary(), nullable=False)
        batch.create_unique_constraint("uq_tenants_access_key_id", ["access_key_id"])
    op.drop_index("ix_access_keys_tenant_id", table_name="access_keys")
    op.drop_table("access_keys")
