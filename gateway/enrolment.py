"""Subjects and their events: register, update, unregister, list.

Every write follows one shape: check what can be checked cheaply (tags exist, the
subject exists), extract the face (outside any transaction: it takes tens of
milliseconds), then in one transaction re-check, write the rows and a changes row, and
commit; only then is the matcher told (gateway/replication.py). The caller's answer
means "committed".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection

from facegate.contract import MAX_LIST_PAGE
from facegate.errors import ErrorType, FacegateError
from facegate.faces import FaceAttributes
from gateway.deps import GatewayDeps, new_id
from gateway.faces import Face, attributes_json
from gateway.replication import record_change, record_event_changes
from gateway.store import events, tags
from gateway.store.changes import KIND_EVENT
from gateway.store.records import Application, Change, EventListing, NewEvent

MAX_ID_LENGTH = 256


@dataclass(frozen=True)
class Registered:
    subject_id: str
    event_id: str
    attributes: FaceAttributes


def require_image(image: bytes, field: str) -> None:
    if not image:
        raise FacegateError(ErrorType.INVALID_REQUEST, f"{field} property must be provided.")


def require_id(value: str, what: str) -> str:
    if not value or len(value) > MAX_ID_LENGTH:
        raise FacegateError(
            ErrorType.INVALID_REQUEST, f"{what} must be 1 to {MAX_ID_LENGTH} characters."
        )
    require_printable(value, what)
    return value


def require_printable(value: str, what: str, *, free_text: bool = False) -> None:
    """No control characters (PostgreSQL refuses NUL in text; none belongs in an id or a
    name); ``free_text`` (descriptions) may hold tabs and line breaks."""
    allowed = "\t\n\r" if free_text else ""
    if any((ord(c) < 32 or ord(c) == 127) and c not in allowed for c in value):
        raise FacegateError(
            ErrorType.INVALID_REQUEST, f"{what} must not contain control characters."
        )


def subject_not_found(subject_id: str) -> FacegateError:
    return FacegateError(ErrorType.NOT_FOUND, f"Subject {subject_id} not found.")


class Enrolment:
    def __init__(self, deps: GatewayDeps) -> None:
        self._deps = deps

    # ---------------------------------------------------------------- subjects

    def register_subject(
        self, application: Application, image: bytes, tag_names: Sequence[str]
    ) -> Registered:
        require_image(image, "face")
        gallery_id = application.gallery_id
        self._tag_mask(gallery_id, tag_names)
        face = self._face(application, image)
        subject_id, event_id = new_id(), new_id()
        now_ms = self._deps.clock()
        with self._deps.database.write() as conn:
            mask = tags.tag_mask(conn, gallery_id, tag_names)
            events.create_subject(conn, gallery_id, subject_id, now_ms)
            change = store_event(
                conn,
                gallery_id,
                subject_id=subject_id,
                event_id=event_id,
                mask=mask,
                face=face,
                now_ms=now_ms,
            )
        self._deps.replicator.push([change])
        return Registered(subject_id, event_id, face.attributes)

    def update_subject(
        self,
        application: Application,
        subject_id: str,
        image: bytes,
        tag_names: Sequence[str],
    ) -> Registered:
        """The subject's active events become deleted; the new face is its one active
        event."""
        return self._add_event(application, subject_id, image, tag_names, replace_all=True)

    def unregister_subject(self, application: Application, subject_id: str) -> None:
        require_id(subject_id, "id")
        gallery_id = application.gallery_id
        now_ms = self._deps.clock()
        with self._deps.database.write() as conn:
            retired = events.mark_subject_deleted(conn, gallery_id, subject_id, now_ms)
            if not retired:
                raise subject_not_found(subject_id)
            pending = [
                record_change(conn, gallery_id, KIND_EVENT, event_id=e, now_ms=now_ms)
                for e in retired
            ]
        self._deps.replicator.push(pending)

    def list_rows(
        self, application: Application, *, start: int, length: int, descending: bool
    ) -> tuple[list[EventListing], int]:
        if start < 0:
            raise FacegateError(ErrorType.INVALID_REQUEST, "start must be 0 or more.")
        if not 1 <= length <= MAX_LIST_PAGE:
            raise FacegateError(
                ErrorType.INVALID_REQUEST, f"length must be between 1 and {MAX_LIST_PAGE}."
            )
        with self._deps.database.read() as conn:
            return events.list_event_listing(
                conn, application.gallery_id, start=start, length=length, descending=descending
            )

    # ------------------------------------------------------------------ events

    def list_events(self, application: Application, subject_id: str) -> list[str]:
        require_id(subject_id, "id")
        with self._deps.database.read() as conn:
            rows = events.active_events(conn, application.gallery_id, subject_id)
        if not rows:
            raise subject_not_found(subject_id)
        return [row.event_id for row in rows]

    def register_event(
        self,
        application: Application,
        subject_id: str,
        image: bytes,
        tag_names: Sequence[str],
    ) -> Registered:
        return self._add_event(application, subject_id, image, tag_names, replace_all=False)

    def update_event(
        self,
        application: Application,
        subject_id: str,
        event_id: str,
        image: bytes,
        tag_names: Sequence[str],
    ) -> Registered:
        """The event's active row becomes deleted and a new active row of the same event
        id holds the new face and tags."""
        require_id(subject_id, "id")
        require_id(event_id, "eventId")
        require_image(image, "face")
        gallery_id = application.gallery_id
        self._require_event(gallery_id, subject_id, event_id)
        self._tag_mask(gallery_id, tag_names)
        face = self._face(application, image)
        now_ms = self._deps.clock()
        with self._deps.database.write() as conn:
            mask = tags.tag_mask(conn, gallery_id, tag_names)
            if not events.mark_event_deleted(conn, gallery_id, subject_id, event_id, now_ms):
                raise self._event_not_found(subject_id, event_id)
            change = store_event(
                conn,
                gallery_id,
                subject_id=subject_id,
                event_id=event_id,
                mask=mask,
                face=face,
                now_ms=now_ms,
            )
        self._deps.replicator.push([change])
        return Registered(subject_id, event_id, face.attributes)

    def unregister_event(self, application: Application, subject_id: str, event_id: str) -> None:
        require_id(subject_id, "id")
        require_id(event_id, "eventId")
        gallery_id = application.gallery_id
        now_ms = self._deps.clock()
        with self._deps.database.write() as conn:
            if not events.mark_event_deleted(conn, gallery_id, subject_id, event_id, now_ms):
                raise self._event_not_found(subject_id, event_id)
            change = record_change(conn, gallery_id, KIND_EVENT, event_id=event_id, now_ms=now_ms)
        self._deps.replicator.push([change])

    # ----------------------------------------------------------------- helpers

    def _add_event(
        self,
        application: Application,
        subject_id: str,
        image: bytes,
        tag_names: Sequence[str],
        *,
        replace_all: bool,
    ) -> Registered:
        """A new active event of an existing subject; ``replace_all``: its other active
        events become deleted in the same transaction (a subject update)."""
        require_id(subject_id, "id")
        require_image(image, "face")
        gallery_id = application.gallery_id
        self._require_subject(gallery_id, subject_id)
        self._tag_mask(gallery_id, tag_names)
        face = self._face(application, image)
        event_id = new_id()
        now_ms = self._deps.clock()
        with self._deps.database.write() as conn:
            if not events.subject_exists(conn, gallery_id, subject_id):
                raise subject_not_found(subject_id)
            mask = tags.tag_mask(conn, gallery_id, tag_names)
            pending: list[Change] = []
            if replace_all:
                retired = events.mark_subject_deleted(conn, gallery_id, subject_id, now_ms)
                pending += [
                    record_change(conn, gallery_id, KIND_EVENT, event_id=e, now_ms=now_ms)
                    for e in retired
                ]
            pending.append(
                store_event(
                    conn,
                    gallery_id,
                    subject_id=subject_id,
                    event_id=event_id,
                    mask=mask,
                    face=face,
                    now_ms=now_ms,
                )
            )
        self._deps.replicator.push(pending)
        return Registered(subject_id, event_id, face.attributes)

    def _face(self, application: Application, image: bytes) -> Face:
        return self._deps.extractor.enrolment_face(
            image, min_quality=application.face_minimum_quality_score
        )

    def _tag_mask(self, gallery_id: str, tag_names: Sequence[str]) -> int:
        with self._deps.database.read() as conn:
            return tags.tag_mask(conn, gallery_id, tag_names)

    def _require_subject(self, gallery_id: str, subject_id: str) -> None:
        with self._deps.database.read() as conn:
            if not events.subject_exists(conn, gallery_id, subject_id):
                raise subject_not_found(subject_id)

    def _require_event(self, gallery_id: str, subject_id: str, event_id: str) -> None:
        with self._deps.database.read() as conn:
            row = events.active_event(conn, gallery_id, event_id)
        if row is None or row.subject_id != subject_id:
            raise self._event_not_found(subject_id, event_id)

    @staticmethod
    def _event_not_found(subject_id: str, event_id: str) -> FacegateError:
        return FacegateError(
            ErrorType.NOT_FOUND, f"Event {event_id} of subject {subject_id} not found."
        )


def store_event(
    conn: Connection,
    gallery_id: str,
    *,
    subject_id: str,
    event_id: str,
    mask: int,
    face: Face,
    now_ms: int,
) -> Change:
    """Write an active event of the face, and its outbox row, in the caller's
    transaction; push the returned change after the commit."""
    event = new_event(subject_id=subject_id, event_id=event_id, mask=mask, face=face)
    events.insert_event(conn, gallery_id=gallery_id, **vars(event), now_ms=now_ms)
    return record_change(conn, gallery_id, KIND_EVENT, event_id=event_id, now_ms=now_ms)


def new_event(*, subject_id: str, event_id: str, mask: int, face: Face) -> NewEvent:
    return NewEvent(
        event_id=event_id,
        subject_id=subject_id,
        tag_mask=mask,
        model_id=face.template.model_id,
        template=face.template.to_bytes(),
        attributes_json=attributes_json(face.attributes),
    )


def store_events(
    conn: Connection, gallery_id: str, new: Sequence[NewEvent], *, now_ms: int
) -> tuple[events.AddedEvents, list[Change]]:
    """:func:`store_event` for several events: as many as the gallery has slots for, in
    order (``AddedEvents.rows``), with the changes to push after the commit."""
    added = events.insert_events(conn, gallery_id, new, now_ms)
    event_ids = [row.event_id for row in added.rows]
    return added, record_event_changes(conn, gallery_id, event_ids, now_ms=now_ms)
