"""The outbox of changes to replay into the matcher.

A change is written in the transaction of the change it describes, so the database and
the matcher cannot disagree for good: the gateway replays pending changes until the
matcher acknowledges them, then removes them.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import Connection, delete, insert, select

from gateway.store.common import chunks
from gateway.store.records import Change
from gateway.store.schema import changes

KIND_EVENT = "event"
KIND_CLEAR_TAG_BIT = "clear_tag_bit"
KIND_DROP_GALLERY = "drop_gallery"
KINDS = (KIND_EVENT, KIND_CLEAR_TAG_BIT, KIND_DROP_GALLERY)


def add_change(
    conn: Connection,
    *,
    gallery_id: str,
    kind: str,
    event_id: str | None = None,
    bit: int | None = None,
    now_ms: int,
) -> int:
    """Records a change and returns its id (ids grow with time)."""
    if kind not in KINDS:
        raise ValueError(f"unknown change kind {kind!r}")
    change_id: int = conn.execute(
        insert(changes)
        .values(gallery_id=gallery_id, kind=kind, event_id=event_id, bit=bit, created_ms=now_ms)
        .returning(changes.c.id)
    ).scalar_one()
    return change_id


def add_event_changes(
    conn: Connection, *, gallery_id: str, event_ids: Sequence[str], now_ms: int
) -> list[int]:
    """Records a change of each event, in one statement; their ids, in order."""
    if not event_ids:
        return []
    values = [
        {
            "gallery_id": gallery_id,
            "kind": KIND_EVENT,
            "event_id": e,
            "bit": None,
            "created_ms": now_ms,
        }
        for e in event_ids
    ]
    return list(
        conn.execute(
            insert(changes).returning(changes.c.id, sort_by_parameter_order=True), values
        ).scalars()
    )


def pending_changes(
    conn: Connection, limit: int, *, older_than_ms: int | None = None
) -> list[Change]:
    """Up to ``limit`` changes by id, only those recorded before ``older_than_ms`` when
    given (the newer ones are still being pushed by the requests that made them)."""
    statement = select(changes).order_by(changes.c.id).limit(limit)
    if older_than_ms is not None:
        statement = statement.where(changes.c.created_ms < older_than_ms)
    return [
        Change(
            id=row.id, gallery_id=row.gallery_id, kind=row.kind, event_id=row.event_id, bit=row.bit
        )
        for row in conn.execute(statement)
    ]


def remove_changes(conn: Connection, ids: Collection[int]) -> None:
    """Removes acknowledged changes; unknown ids are ignored."""
    for chunk in chunks(ids):
        conn.execute(delete(changes).where(changes.c.id.in_(chunk)))
