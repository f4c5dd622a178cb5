"""Alembic environment: runs the migrations on the connection the caller passes in
``config.attributes["connection"]`` (see gateway.store.database), inside its transaction."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from gateway.store.schema import metadata

connection: Connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite alters a table by copying it; batch mode writes migrations that way there.
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
