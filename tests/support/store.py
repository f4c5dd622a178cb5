"""Helpers that fill a gateway store for tests (tests/unit/gateway/store and its users)."""

from __future__ import annotations

import uuid

from sqlalchemy import Connection, delete

from gateway.store import events, galleries, tenants
from gateway.store.database import Database
from gateway.store.records import EventRow, Gallery, Tenant
from gateway.store.schema import metadata


def new_id() -> str:
    return str(uuid.uuid4())


def clear(database: Database) -> None:
    """Deletes every row (cheaper than a new PostgreSQL database per test)."""
    with database.write() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(delete(table))


def new_tenant(conn: Connection, name: str = "acme", *, now_ms: int = 1_000) -> Tenant:
    return tenants.create_tenant(
        conn,
        id=new_id(),
        name=name,
        access_key_id=f"AK-{name}",
        secret_ciphertext=b"\x00sealed\xff" + name.encode(),
        now_ms=now_ms,
    )


def new_gallery(
    conn: Connection, tenant_id: str, name: str = "main", *, size: int = 100, now_ms: int = 1_000
) -> Gallery:
    return galleries.create_gallery(
        conn,
        id=new_id(),
        tenant_id=tenant_id,
        name=name,
        description=f"{name} gallery",
        size=size,
        face_minimum_quality_score=0.5,
        now_ms=now_ms,
    )


def new_event(
    conn: Connection,
    gallery_id: str,
    subject_id: str = "subject-1",
    *,
    event_id: str | None = None,
    tag_mask: int = 0,
    now_ms: int = 1_000,
) -> EventRow:
    """Enrols an event (and its subject) the way the gateway does."""
    events.create_subject(conn, gallery_id, subject_id, now_ms)
    return events.insert_event(
        conn,
        gallery_id=gallery_id,
        event_id=event_id or new_id(),
        subject_id=subject_id,
        tag_mask=tag_mask,
        model_id="model-1",
        template=b"\x00\x00\x80\x3f" * 4,
        attributes_json='{"age": 30}',
        now_ms=now_ms,
    )
