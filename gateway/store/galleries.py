"""Galleries (a tenant's face collections) and applications (API keys bound to one
gallery)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, delete, insert, or_, select, update

from facegate.errors import ErrorType, FacegateError
from gateway.store.common import gallery_not_found, lock_gallery, try_execute
from gateway.store.records import Application, Gallery
from gateway.store.schema import (
    applications,
    bulk_sources,
    events,
    galleries,
    job_records,
    jobs,
    subjects,
    tags,
)


class GalleryNameTaken(Exception):  # noqa: N818 - the name says what happened
    """The tenant already has a gallery of that name; the caller words the error."""

    def __init__(self, existing_gallery_id: str) -> None:
        super().__init__(existing_gallery_id)
        self.existing_gallery_id = existing_gallery_id


def create_gallery(
    conn: Connection,
    *,
    id: str,
    tenant_id: str,
    name: str,
    description: str,
    size: int,
    face_minimum_quality_score: float,
    now_ms: int,
) -> Gallery:
    """Adds an empty gallery; GalleryNameTaken when the tenant has one of that name."""
    _require_free_name(conn, tenant_id, name)
    gallery = Gallery(
        id=id,
        tenant_id=tenant_id,
        name=name,
        description=description,
        size=size,
        face_minimum_quality_score=face_minimum_quality_score,
        created_ms=now_ms,
        count=0,
    )
    values: dict[str, Any] = {
        column.name: getattr(gallery, column.name)
        for column in galleries.columns
        if column.name != "event_rows"
    }
    values["event_rows"] = gallery.count
    error = try_execute(conn, insert(galleries).values(values))
    if error is not None:
        _require_free_name(conn, tenant_id, name)
        raise error
    return gallery


def get_gallery(conn: Connection, tenant_id: str, gallery_id: str) -> Gallery | None:
    """The tenant's gallery of that id; None also when another tenant owns it."""
    row = conn.execute(
        select(galleries).where(galleries.c.id == gallery_id, galleries.c.tenant_id == tenant_id)
    ).first()
    return None if row is None else _gallery(row)


def gallery_by_id(conn: Connection, gallery_id: str) -> Gallery | None:
    """The gallery of that id whoever owns it (for internal use, not for requests)."""
    row = conn.execute(select(galleries).where(galleries.c.id == gallery_id)).first()
    return None if row is None else _gallery(row)


def list_galleries(conn: Connection, tenant_id: str) -> list[Gallery]:
    """The tenant's galleries, by name."""
    rows = conn.execute(
        select(galleries).where(galleries.c.tenant_id == tenant_id).order_by(galleries.c.name)
    )
    return [_gallery(row) for row in rows]


def update_gallery(
    conn: Connection,
    gallery_id: str,
    *,
    name: str | None = None,
    description: str | None = None,
    size: int | None = None,
) -> Gallery:
    """Changes the given fields; GalleryNameTaken when another gallery of the tenant has
    the new name, NOT_FOUND when the gallery does not exist."""
    current = _existing(conn, gallery_id)
    values: dict[str, Any] = {}
    if name is not None and name != current.name:
        _require_free_name(conn, current.tenant_id, name)
        values["name"] = name
    if description is not None:
        values["description"] = description
    if size is not None:
        values["size"] = size
    if values:
        error = try_execute(
            conn, update(galleries).where(galleries.c.id == gallery_id).values(values)
        )
        if error is not None:
            if name is not None:
                _require_free_name(conn, current.tenant_id, name)
            raise error
    return _existing(conn, gallery_id)


def delete_gallery(conn: Connection, gallery_id: str) -> None:
    """Deletes the gallery and everything in it. Its outbox changes stay: the matcher has
    yet to drop what it holds of the gallery."""
    # The lock first: inserts into the gallery take it too, so they cannot interleave.
    lock_gallery(conn, gallery_id)
    # Explicit deletes, not only cascades: a SQLite connection opened without
    # foreign_keys=ON ignores ON DELETE CASCADE.
    conn.execute(
        delete(job_records).where(
            job_records.c.job_id.in_(select(jobs.c.id).where(jobs.c.gallery_id == gallery_id))
        )
    )
    for table in (events, subjects, tags, applications, jobs, bulk_sources):
        conn.execute(delete(table).where(table.c.gallery_id == gallery_id))
    conn.execute(delete(galleries).where(galleries.c.id == gallery_id))


def create_application(
    conn: Connection,
    *,
    id: str,
    tenant_id: str,
    gallery_id: str,
    name: str,
    description: str,
    api_key_hash: bytes,
    api_key_hint: str,
    face_minimum_quality_score: float,
    now_ms: int,
) -> Application:
    """Adds an application of the tenant's gallery."""
    application = Application(
        id=id,
        tenant_id=tenant_id,
        gallery_id=gallery_id,
        name=name,
        description=description,
        api_key_hash=api_key_hash,
        api_key_hint=api_key_hint,
        face_minimum_quality_score=face_minimum_quality_score,
        created_ms=now_ms,
    )
    conn.execute(insert(applications).values(vars(application)))
    return application


def get_application(conn: Connection, tenant_id: str, application_id: str) -> Application | None:
    """The tenant's application of that id; None also when another tenant owns it."""
    row = conn.execute(
        select(applications).where(
            applications.c.id == application_id, applications.c.tenant_id == tenant_id
        )
    ).first()
    return None if row is None else _application(row)


def application_by_key_hash(conn: Connection, key_hash: bytes) -> Application | None:
    """The application whose API key, or previous API key, has this sha256 (whether the
    previous key is still accepted is the caller's to decide: it depends on the time)."""
    row = conn.execute(
        select(applications).where(
            or_(
                applications.c.api_key_hash == key_hash,
                applications.c.previous_api_key_hash == key_hash,
            )
        )
    ).first()
    return None if row is None else _application(row)


def replace_api_key(
    conn: Connection,
    application_id: str,
    *,
    api_key_hash: bytes,
    api_key_hint: str,
    previous_until_ms: int,
) -> Application:
    """Gives the application a new key; the current one becomes its previous key, until
    ``previous_until_ms`` (a key replaced earlier is forgotten). NOT_FOUND when the
    application does not exist."""
    current = conn.execute(
        select(applications).where(applications.c.id == application_id).with_for_update()
    ).first()
    if current is None:
        raise FacegateError(ErrorType.NOT_FOUND, "Application not found.")
    conn.execute(
        update(applications)
        .where(applications.c.id == application_id)
        .values(
            api_key_hash=api_key_hash,
            api_key_hint=api_key_hint,
            previous_api_key_hash=current.api_key_hash,
            previous_api_key_hint=current.api_key_hint,
            previous_api_key_until_ms=previous_until_ms,
        )
    )
    row = conn.execute(select(applications).where(applications.c.id == application_id)).one()
    return _application(row)


def list_applications(
    conn: Connection, tenant_id: str, gallery_id: str | None = None
) -> list[Application]:
    """The tenant's applications, of one gallery when given, by name."""
    statement = select(applications).where(applications.c.tenant_id == tenant_id)
    if gallery_id is not None:
        statement = statement.where(applications.c.gallery_id == gallery_id)
    rows = conn.execute(statement.order_by(applications.c.name, applications.c.id))
    return [_application(row) for row in rows]


def update_application(
    conn: Connection,
    application_id: str,
    *,
    name: str | None = None,
    description: str | None = None,
    face_minimum_quality_score: float | None = None,
) -> Application:
    """Changes the given fields; NOT_FOUND when the application does not exist."""
    values: dict[str, Any] = {}
    if name is not None:
        values["name"] = name
    if description is not None:
        values["description"] = description
    if face_minimum_quality_score is not None:
        values["face_minimum_quality_score"] = face_minimum_quality_score
    if values:
        conn.execute(update(applications).where(applications.c.id == application_id).values(values))
    row = conn.execute(select(applications).where(applications.c.id == application_id)).first()
    if row is None:
        raise FacegateError(ErrorType.NOT_FOUND, "Application not found.")
    return _application(row)


def delete_application(conn: Connection, application_id: str) -> None:
    conn.execute(delete(applications).where(applications.c.id == application_id))


def _require_free_name(conn: Connection, tenant_id: str, name: str) -> None:
    existing = conn.execute(
        select(galleries.c.id).where(galleries.c.tenant_id == tenant_id, galleries.c.name == name)
    ).scalar_one_or_none()
    if existing is not None:
        raise GalleryNameTaken(existing)


def _existing(conn: Connection, gallery_id: str) -> Gallery:
    gallery = gallery_by_id(conn, gallery_id)
    if gallery is None:
        raise gallery_not_found()
    return gallery


def _gallery(row: Row[Any]) -> Gallery:
    return Gallery(
        id=row.id,
        tenant_id=row.tenant_id,
        name=row.name,
        description=row.description,
        size=row.size,
        face_minimum_quality_score=row.face_minimum_quality_score,
        created_ms=row.created_ms,
        count=row.event_rows,
    )


def _application(row: Row[Any]) -> Application:
    return Application(
        id=row.id,
        tenant_id=row.tenant_id,
        gallery_id=row.gallery_id,
        name=row.name,
        description=row.description,
        api_key_hash=bytes(row.api_key_hash),
        api_key_hint=row.api_key_hint,
        face_minimum_quality_score=row.face_minimum_quality_score,
        created_ms=row.created_ms,
        previous_api_key_hash=None
        if row.previous_api_key_hash is None
        else bytes(row.previous_api_key_hash),
        previous_api_key_hint=row.previous_api_key_hint,
        previous_api_key_until_ms=row.previous_api_key_until_ms,
    )
