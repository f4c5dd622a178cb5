"""Tenants, galleries and applications, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import Connection, func, select
from sqlalchemy.exc import IntegrityError

from facegate.errors import ErrorType, FacegateError
from gateway.store import changes, galleries, tags, tenants
from gateway.store.database import Database
from gateway.store.galleries import GalleryNameTaken
from gateway.store.records import Application, Tenant
from gateway.store.schema import applications, events, subjects
from gateway.store.schema import tags as tags_table
from tests.support.store import new_event, new_gallery, new_id, new_tenant


def _application(
    conn: Connection, tenant_id: str, gallery_id: str, name: str, key: str
) -> Application:
    return galleries.create_application(
        conn,
        id=new_id(),
        tenant_id=tenant_id,
        gallery_id=gallery_id,
        name=name,
        description=f"{name} app",
        api_key_hash=hashlib.sha256(key.encode()).digest(),
        api_key_hint=key[:8],
        face_minimum_quality_score=0.25,
        now_ms=2_000,
    )


def test_tenants_are_found_by_name_and_access_key(database: Database) -> None:
    with database.write() as conn:
        created = new_tenant(conn, "acme", now_ms=5)
        other = new_tenant(conn, "beta")
    assert created == Tenant(created.id, "acme", "AK-acme", 5)
    with database.read() as conn:
        assert tenants.tenant_by_name(conn, "acme") == created
        assert tenants.tenant_by_access_key(conn, "AK-beta") == other
        assert tenants.tenant_by_name(conn, "nobody") is None
        assert tenants.tenant_by_access_key(conn, "AK-nobody") is None
        assert tenants.list_tenants(conn) == [created, other]


def test_a_tenant_name_is_taken_once(database: Database) -> None:
    with database.write() as conn:
        new_tenant(conn, "acme")
    with pytest.raises(FacegateError) as info, database.write() as conn:
        tenants.create_tenant(
            conn, id=new_id(), name="acme", access_key_id="AK-2", secret_ciphertext=b"", now_ms=1
        )
    assert info.value.error_type is ErrorType.DUPLICATE
    assert info.value.message == "Tenant acme already exists."


def test_galleries_belong_to_their_tenant(database: Database) -> None:
    with database.write() as conn:
        acme, beta = new_tenant(conn, "acme"), new_tenant(conn, "beta")
        second = new_gallery(conn, acme.id, "second", size=7, now_ms=9)
        first = new_gallery(conn, acme.id, "first")
        theirs = new_gallery(conn, beta.id, "first")
    assert (second.size, second.count, second.created_ms, second.description) == (
        7,
        0,
        9,
        "second gallery",
    )
    assert second.face_minimum_quality_score == 0.5
    with database.read() as conn:
        assert galleries.get_gallery(conn, acme.id, second.id) == second
        assert galleries.get_gallery(conn, beta.id, second.id) is None
        assert galleries.get_gallery(conn, acme.id, "missing") is None
        assert galleries.gallery_by_id(conn, theirs.id) == theirs
        assert galleries.gallery_by_id(conn, "missing") is None
        assert galleries.list_galleries(conn, acme.id) == [first, second]
        assert galleries.list_galleries(conn, beta.id) == [theirs]


def test_gallery_count_covers_active_and_deleted_rows(database: Database) -> None:
    with database.write() as conn:
        tenant = new_tenant(conn)
        gallery = new_gallery(conn, tenant.id)
        new_event(conn, gallery.id, "s1")
        row = new_event(conn, gallery.id, "s2")
        new_event(conn, gallery.id, "s2", event_id=row.event_id)  # an update: A + D rows
    with database.read() as conn:
        assert galleries.list_galleries(conn, tenant.id)[0].count == 3
        found = galleries.get_gallery(conn, tenant.id, gallery.id)
        assert found is not None
        assert found.count == 3


def test_a_gallery_name_is_taken_once_per_tenant(database: Database) -> None:
    with database.write() as conn:
        tenant = new_tenant(conn)
        existing = new_gallery(conn, tenant.id, "main")
        other = new_gallery(conn, tenant.id, "other")
    with pytest.raises(GalleryNameTaken) as info, database.write() as conn:
        new_gallery(conn, tenant.id, "main")
    assert info.value.existing_gallery_id == existing.id
    with pytest.raises(GalleryNameTaken) as info, database.write() as conn:
        galleries.update_gallery(conn, other.id, name="main")
    assert info.value.existing_gallery_id == existing.id


def test_update_gallery_changes_only_the_given_fields(database: Database) -> None:
    with database.write() as conn:
        gallery = new_gallery(conn, new_tenant(conn).id, "main", size=10)
        renamed = galleries.update_gallery(conn, gallery.id, name="renamed")
        assert renamed == galleries.update_gallery(conn, gallery.id, name="renamed")
        resized = galleries.update_gallery(conn, gallery.id, size=20, description="new")
    assert (renamed.name, renamed.size, renamed.description) == ("renamed", 10, "main gallery")
    assert (resized.name, resized.size, resized.description) == ("renamed", 20, "new")
    with database.read() as conn:
        assert galleries.gallery_by_id(conn, gallery.id) == resized
    with pytest.raises(FacegateError) as info, database.write() as conn:
        galleries.update_gallery(conn, "missing", size=3)
    assert info.value.error_type is ErrorType.NOT_FOUND


def test_delete_gallery_removes_its_contents_but_not_its_changes(database: Database) -> None:
    with database.write() as conn:
        tenant = new_tenant(conn)
        doomed = new_gallery(conn, tenant.id, "doomed")
        kept = new_gallery(conn, tenant.id, "kept")
        for gallery in (doomed, kept):
            _application(conn, tenant.id, gallery.id, "app", f"key-{gallery.name}")
            tags.create_tag(conn, gallery.id, "vip", 1)
            new_event(conn, gallery.id)
            changes.add_change(conn, gallery_id=gallery.id, kind="event", event_id="e", now_ms=1)
    with database.write() as conn:
        galleries.delete_gallery(conn, doomed.id)
        changes.add_change(conn, gallery_id=doomed.id, kind="drop_gallery", now_ms=2)
    with database.read() as conn:
        assert galleries.gallery_by_id(conn, doomed.id) is None
        for table in (applications, tags_table, subjects, events):
            counts = {
                gallery.id: conn.execute(
                    select(func.count()).where(table.c.gallery_id == gallery.id)
                ).scalar_one()
                for gallery in (doomed, kept)
            }
            assert counts == {doomed.id: 0, kept.id: 1}, table.name
        pending = changes.pending_changes(conn, 10)
    assert [(c.gallery_id, c.kind) for c in pending] == [
        (doomed.id, "event"),
        (kept.id, "event"),
        (doomed.id, "drop_gallery"),
    ]


def test_applications_are_found_by_tenant_gallery_and_key(database: Database) -> None:
    with database.write() as conn:
        acme, beta = new_tenant(conn, "acme"), new_tenant(conn, "beta")
        main, side = new_gallery(conn, acme.id, "main"), new_gallery(conn, acme.id, "side")
        zulu = _application(conn, acme.id, main.id, "zulu", "key-zulu-0123")
        alpha = _application(conn, acme.id, side.id, "alpha", "key-alpha-0123")
    assert (alpha.api_key_hint, alpha.created_ms, alpha.gallery_id) == ("key-alph", 2_000, side.id)
    with database.read() as conn:
        assert galleries.get_application(conn, acme.id, zulu.id) == zulu
        assert galleries.get_application(conn, beta.id, zulu.id) is None
        assert galleries.get_application(conn, acme.id, "missing") is None
        key_hash = hashlib.sha256(b"key-alpha-0123").digest()
        assert galleries.application_by_key_hash(conn, key_hash) == alpha
        assert galleries.application_by_key_hash(conn, b"\x00" * 32) is None
        assert galleries.list_applications(conn, acme.id) == [alpha, zulu]
        assert galleries.list_applications(conn, acme.id, main.id) == [zulu]
        assert galleries.list_applications(conn, beta.id) == []


def test_update_and_delete_application(database: Database) -> None:
    with database.write() as conn:
        tenant = new_tenant(conn)
        gallery = new_gallery(conn, tenant.id)
        app = _application(conn, tenant.id, gallery.id, "app", "key-0123456789")
        updated = galleries.update_application(conn, app.id, face_minimum_quality_score=0.75)
        renamed = galleries.update_application(conn, app.id, name="new", description="d")
    assert (updated.name, updated.face_minimum_quality_score) == ("app", 0.75)
    assert (renamed.name, renamed.description, renamed.face_minimum_quality_score) == (
        "new",
        "d",
        0.75,
    )
    with database.write() as conn:
        galleries.delete_application(conn, app.id)
    with database.read() as conn:
        assert galleries.get_application(conn, tenant.id, app.id) is None
    with pytest.raises(FacegateError) as info, database.write() as conn:
        galleries.update_application(conn, app.id, name="gone")
    assert info.value.error_type is ErrorType.NOT_FOUND


def test_application_key_hashes_are_unique(database: Database) -> None:
    with database.write() as conn:
        tenant = new_tenant(conn)
        gallery = new_gallery(conn, tenant.id)
        _application(conn, tenant.id, gallery.id, "one", "same-key-123")
    with pytest.raises(IntegrityError), database.write() as conn:
        _application(conn, tenant.id, gallery.id, "two", "same-key-123")
