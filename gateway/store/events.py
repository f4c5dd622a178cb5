"""Subjects and their events: the rows (slots) of a gallery.

An event row is active ('A') or deleted ('D'). Deleting keeps the row as 'D' until its
slot is recycled, as NEC ID lists deleted events; updating an event retires its row and
adds a new active row with the same event and subject ids. A gallery holds at most
``size`` rows of either status.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, Row, bindparam, delete, exists, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from facegate.errors import ErrorType, FacegateError
from gateway.store.common import (
    chunks,
    from_stored_mask,
    gallery_not_found,
    lock_gallery,
    to_stored_mask,
)
from gateway.store.records import EventListing, EventRow, EventStatus, NewEvent
from gateway.store.schema import events, galleries, subjects

ACTIVE: EventStatus = "A"
DELETED: EventStatus = "D"


def subject_exists(conn: Connection, gallery_id: str, subject_id: str) -> bool:
    """Whether the subject exists and has an active event (a subject whose events are all
    deleted counts as deleted)."""
    found = conn.execute(
        select(subjects.c.id).where(
            subjects.c.gallery_id == gallery_id,
            subjects.c.id == subject_id,
            exists().where(*_active(gallery_id), events.c.subject_id == subject_id),
        )
    ).first()
    return found is not None


def create_subject(conn: Connection, gallery_id: str, subject_id: str, now_ms: int) -> None:
    """Records the subject; recording it again (a deleted subject enrolled anew) keeps the
    first record. NOT_FOUND when the gallery does not exist."""
    create_subjects(conn, gallery_id, [subject_id], now_ms)


def create_subjects(
    conn: Connection, gallery_id: str, subject_ids: Sequence[str], now_ms: int
) -> None:
    """:func:`create_subject` for several subjects, in one statement."""
    if lock_gallery(conn, gallery_id) is None:
        raise gallery_not_found()
    if not subject_ids:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(
        dialect.insert(subjects).on_conflict_do_nothing(
            index_elements=[subjects.c.gallery_id, subjects.c.id]
        ),
        [{"gallery_id": gallery_id, "id": s, "created_ms": now_ms} for s in subject_ids],
    )


def insert_event(
    conn: Connection,
    *,
    gallery_id: str,
    event_id: str,
    subject_id: str,
    tag_mask: int,
    model_id: str,
    template: bytes,
    attributes_json: str,
    now_ms: int,
) -> EventRow:
    """Adds the active row of an event, retiring the event's previous active row if any.

    A full gallery recycles its oldest deleted rows; with none to recycle this fails with
    INVALID_REQUEST. NOT_FOUND when the gallery does not exist.
    """
    event = NewEvent(event_id, subject_id, tag_mask, model_id, template, attributes_json)
    added = insert_events(conn, gallery_id, [event], now_ms)
    if not added.rows:
        raise gallery_full(added.gallery_size)
    return added.rows[0]


def gallery_full(size: int) -> FacegateError:
    return FacegateError(
        ErrorType.INVALID_REQUEST, f"Gallery is full: {size} of {size} slots in use."
    )


@dataclass(frozen=True)
class AddedEvents:
    rows: list[EventRow]
    """The rows added: those of the first events asked for, as many as had a slot."""
    gallery_size: int


def insert_events(
    conn: Connection, gallery_id: str, new: Sequence[NewEvent], now_ms: int
) -> AddedEvents:
    """:func:`insert_event` for several events (distinct event ids), a few statements in
    all: the first events, as many as the gallery has slots for, are added (retiring the
    previous active rows of those, and recycling deleted rows as needed); nothing is
    changed for the others, which the caller decides about. NOT_FOUND when the gallery
    does not exist."""
    # Locks the gallery row, so that concurrent inserts count the rows one after the other.
    size = lock_gallery(conn, gallery_id)
    if size is None:
        raise gallery_not_found()
    if not new:
        return AddedEvents([], size)
    over = count_event_rows(conn, gallery_id) - size  # slots to free before any insert
    replacing = active_event_ids(conn, gallery_id, [event.event_id for event in new])
    deleted = _deleted_row_ids(conn, gallery_id, over + len(new))
    # An event fits while the rows over the size can be recycled: the deleted rows, and
    # the rows retired by the updates among the events added so far.
    fit = retired = 0
    for event in new:
        retiring = retired + (event.event_id in replacing)
        if over + fit + 1 > len(deleted) + retiring:
            break
        fit, retired = fit + 1, retiring
    new = new[:fit]
    if not new:
        return AddedEvents([], size)
    retire = [event.event_id for event in new if event.event_id in replacing]
    for batch in chunks(retire):
        conn.execute(
            update(events)
            .where(*_active(gallery_id), events.c.event_id.in_(batch))
            .values(status=DELETED, last_updated_ms=now_ms)
        )
    recycled = _deleted_row_ids(conn, gallery_id, over + len(new))
    for recycled_ids in chunks(recycled):
        conn.execute(delete(events).where(events.c.row_id.in_(recycled_ids)))
    rows = [
        EventRow(
            row_id=0,  # assigned by the insert
            gallery_id=gallery_id,
            event_id=event.event_id,
            subject_id=event.subject_id,
            status=ACTIVE,
            tag_mask=event.tag_mask,
            model_id=event.model_id,
            template=event.template,
            attributes_json=event.attributes_json,
            last_updated_ms=now_ms,
        )
        for event in new
    ]
    row_ids = conn.execute(
        insert(events).returning(events.c.row_id, sort_by_parameter_order=True),
        [_stored_values(row) for row in rows],
    ).scalars()
    rows = [replace(row, row_id=row_id) for row, row_id in zip(rows, row_ids, strict=True)]
    _add_event_rows(conn, gallery_id, len(rows) - len(recycled))
    return AddedEvents(rows, size)


def _deleted_row_ids(conn: Connection, gallery_id: str, limit: int) -> list[int]:
    """The gallery's oldest deleted rows, the next to recycle, at most ``limit``."""
    if limit <= 0:
        return []
    return list(
        conn.execute(
            select(events.c.row_id)
            .where(events.c.gallery_id == gallery_id, events.c.status == DELETED)
            .order_by(events.c.last_updated_ms, events.c.row_id)
            .limit(limit)
        ).scalars()
    )


def mark_subject_deleted(
    conn: Connection, gallery_id: str, subject_id: str, now_ms: int
) -> list[str]:
    """Marks every active event of the subject deleted; returns their event ids."""
    event_ids = list(
        conn.execute(
            select(events.c.event_id)
            .where(*_active(gallery_id), events.c.subject_id == subject_id)
            .order_by(events.c.row_id)
        ).scalars()
    )
    if event_ids:
        conn.execute(
            update(events)
            .where(*_active(gallery_id), events.c.subject_id == subject_id)
            .values(status=DELETED, last_updated_ms=now_ms)
        )
    return event_ids


def mark_event_deleted(
    conn: Connection, gallery_id: str, subject_id: str, event_id: str, now_ms: int
) -> bool:
    """Marks the event's active row deleted; False when the subject has no such active
    event."""
    result = conn.execute(
        update(events)
        .where(
            *_active(gallery_id), events.c.subject_id == subject_id, events.c.event_id == event_id
        )
        .values(status=DELETED, last_updated_ms=now_ms)
    )
    return result.rowcount > 0


def active_events(conn: Connection, gallery_id: str, subject_id: str) -> list[EventRow]:
    """The subject's active event rows, oldest first."""
    rows = conn.execute(
        select(events)
        .where(*_active(gallery_id), events.c.subject_id == subject_id)
        .order_by(events.c.last_updated_ms, events.c.row_id)
    )
    return [_event_row(row) for row in rows]


def active_event(conn: Connection, gallery_id: str, event_id: str) -> EventRow | None:
    """The event's active row, whichever subject it belongs to."""
    return active_event_rows(conn, gallery_id, [event_id]).get(event_id)


def active_event_rows(
    conn: Connection, gallery_id: str, event_ids: Collection[str]
) -> dict[str, EventRow]:
    """The active rows of those of ``event_ids`` that have one, by event id."""
    found: dict[str, EventRow] = {}
    for chunk in chunks(event_ids):
        rows = conn.execute(_ACTIVE_ROWS_AMONG, {"gallery_id": gallery_id, "event_ids": chunk})
        found.update((row.event_id, _event_row(row)) for row in rows)
    return found


# Built once: this runs on every search, and building and keying a statement cost more
# than running it.
_ACTIVE_AMONG_WHERE = (
    events.c.gallery_id == bindparam("gallery_id"),
    events.c.status == ACTIVE,
    events.c.event_id.in_(bindparam("event_ids", expanding=True)),
)
_ACTIVE_AMONG = select(events.c.event_id).where(*_ACTIVE_AMONG_WHERE)
_ACTIVE_ROWS_AMONG = select(events).where(*_ACTIVE_AMONG_WHERE)


def active_event_ids(conn: Connection, gallery_id: str, event_ids: Collection[str]) -> set[str]:
    """Those of ``event_ids`` that still have an active row (matcher hits may be stale)."""
    found: set[str] = set()
    for chunk in chunks(event_ids):
        rows = conn.execute(_ACTIVE_AMONG, {"gallery_id": gallery_id, "event_ids": chunk})
        found.update(rows.scalars())
    return found


def list_event_rows(
    conn: Connection, gallery_id: str, *, start: int, length: int, descending: bool
) -> tuple[list[EventRow], int]:
    """A page of the gallery's rows of both statuses, ordered by last update (then row id),
    and the gallery's total row count."""
    order = (events.c.last_updated_ms, events.c.row_id)
    rows = conn.execute(
        select(events)
        .where(events.c.gallery_id == gallery_id)
        .order_by(*(column.desc() for column in order) if descending else order)
        .offset(start)
        .limit(length)
    )
    return [_event_row(row) for row in rows], count_event_rows(conn, gallery_id)


def list_event_listing(
    conn: Connection, gallery_id: str, *, start: int, length: int, descending: bool
) -> tuple[list[EventListing], int]:
    """:func:`list_event_rows` without the templates and attributes a listing does not
    show (a 1,000-row page would otherwise read ~2 MB of templates)."""
    order = (events.c.last_updated_ms, events.c.row_id)
    rows = conn.execute(
        select(
            events.c.row_id,
            events.c.subject_id,
            events.c.event_id,
            events.c.status,
            events.c.last_updated_ms,
        )
        .where(events.c.gallery_id == gallery_id)
        .order_by(*(column.desc() for column in order) if descending else order)
        .offset(start)
        .limit(length)
    )
    listing = [
        EventListing(row.row_id, row.subject_id, row.event_id, row.status, row.last_updated_ms)
        for row in rows
    ]
    return listing, count_event_rows(conn, gallery_id)


def active_rows_after(
    conn: Connection, gallery_id: str, *, after_row_id: int, limit: int
) -> list[EventRow]:
    """Up to ``limit`` active rows with a row id above ``after_row_id``, by row id: a
    walk over a gallery that writes during it cannot make skip rows (an updated event's
    new row has a higher id, so it is still ahead)."""
    rows = conn.execute(
        select(events)
        .where(*_active(gallery_id), events.c.row_id > after_row_id)
        .order_by(events.c.row_id)
        .limit(limit)
    )
    return [_event_row(row) for row in rows]


def count_event_rows(conn: Connection, gallery_id: str) -> int:
    """The gallery's rows of both statuses: its slots in use (0 for no gallery)."""
    count: int | None = conn.execute(
        select(galleries.c.event_rows).where(galleries.c.id == gallery_id)
    ).scalar_one_or_none()
    return count or 0


def count_active_events(conn: Connection, gallery_id: str) -> int:
    """The gallery's active events: what a search compares a probe with."""
    count: int = conn.execute(
        select(func.count())
        .select_from(events)
        .where(events.c.gallery_id == gallery_id, events.c.status == ACTIVE)
    ).scalar_one()
    return count


def _add_event_rows(conn: Connection, gallery_id: str, added: int) -> None:
    if added:
        conn.execute(
            update(galleries)
            .where(galleries.c.id == gallery_id)
            .values(event_rows=galleries.c.event_rows + added)
        )


def _stored_values(row: EventRow) -> dict[str, Any]:
    values = {**vars(row), "tag_mask": to_stored_mask(row.tag_mask)}
    del values["row_id"]
    return values


def _active(gallery_id: str) -> tuple[Any, Any]:
    return events.c.gallery_id == gallery_id, events.c.status == ACTIVE


def _event_row(row: Row[Any]) -> EventRow:
    status = row.status
    if status not in (ACTIVE, DELETED):
        raise ValueError(f"event row {row.row_id} has status {status!r}")
    return EventRow(
        row_id=row.row_id,
        gallery_id=row.gallery_id,
        event_id=row.event_id,
        subject_id=row.subject_id,
        status=status,
        tag_mask=from_stored_mask(row.tag_mask),
        model_id=row.model_id,
        template=bytes(row.template),
        attributes_json=row.attributes_json,
        last_updated_ms=row.last_updated_ms,
    )
