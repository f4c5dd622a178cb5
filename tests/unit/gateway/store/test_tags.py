"""Tags and their bits, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Connection

from facegate.errors import ErrorType, FacegateError
from gateway.store import changes, events, tags
from gateway.store.database import Database
from gateway.store.records import Tag
from tests.support.store import new_event, new_gallery, new_tenant


@pytest.fixture
def gallery_id(database: Database) -> str:
    with database.write() as conn:
        return new_gallery(conn, new_tenant(conn).id).id


def _error(database: Database, action: Callable[[Connection], object]) -> FacegateError:
    with pytest.raises(FacegateError) as info, database.write() as conn:
        action(conn)
    return info.value


def test_tags_take_the_lowest_free_bit_and_list_in_creation_order(
    database: Database, gallery_id: str
) -> None:
    with database.write() as conn:
        created = [tags.create_tag(conn, gallery_id, name, 10) for name in ("a", "b", "c")]
        tags.delete_tag(conn, gallery_id, "a")
        reused = tags.create_tag(conn, gallery_id, "d", 20)
    assert created == [Tag(gallery_id, 0, "a"), Tag(gallery_id, 1, "b"), Tag(gallery_id, 2, "c")]
    assert reused == Tag(gallery_id, 0, "d")
    with database.read() as conn:
        assert tags.list_tags(conn, gallery_id) == [created[1], created[2], reused]
        assert tags.list_tags(conn, "other") == []


def test_a_bit_still_being_cleared_is_not_reused(database: Database, gallery_id: str) -> None:
    """The matchers clear a deleted tag's bit later (the outbox); until then a new tag
    must take another bit, or the late clear would strip it from the new tag's events."""
    with database.write() as conn:
        tags.create_tag(conn, gallery_id, "a", 10)
        tags.create_tag(conn, gallery_id, "b", 11)
        tags.delete_tag(conn, gallery_id, "a")
        change = changes.add_change(
            conn, gallery_id=gallery_id, kind=changes.KIND_CLEAR_TAG_BIT, bit=0, now_ms=12
        )
        assert tags.create_tag(conn, gallery_id, "c", 13).bit == 2
        changes.remove_changes(conn, [change])  # the matchers have cleared bit 0
        assert tags.create_tag(conn, gallery_id, "d", 14).bit == 0


def test_a_gallery_has_at_most_64_tags(database: Database, gallery_id: str) -> None:
    with database.write() as conn:
        for index in range(64):
            tags.create_tag(conn, gallery_id, f"t{index}", index)
    error = _error(database, lambda conn: tags.create_tag(conn, gallery_id, "one-too-many", 99))
    assert (error.error_type, error.message) == (
        ErrorType.INVALID_REQUEST,
        "A gallery has at most 64 tags.",
    )
    with database.read() as conn:
        assert [tag.bit for tag in tags.list_tags(conn, gallery_id)] == list(range(64))


def test_tag_names_are_unique_per_gallery(database: Database, gallery_id: str) -> None:
    with database.write() as conn:
        tags.create_tag(conn, gallery_id, "vip", 1)
        tags.create_tag(conn, gallery_id, "staff", 1)
        other = new_gallery(conn, new_tenant(conn, "beta").id)
        assert tags.create_tag(conn, other.id, "vip", 1) == Tag(other.id, 0, "vip")
    error = _error(database, lambda conn: tags.create_tag(conn, gallery_id, "vip", 2))
    assert (error.error_type, error.message) == (ErrorType.DUPLICATE, "Tag vip already exists.")
    error = _error(database, lambda conn: tags.rename_tag(conn, gallery_id, "staff", "vip"))
    assert (error.error_type, error.message) == (ErrorType.DUPLICATE, "Tag vip already exists.")


def test_rename_keeps_the_bit(database: Database, gallery_id: str) -> None:
    with database.write() as conn:
        tags.create_tag(conn, gallery_id, "a", 1)
        tags.create_tag(conn, gallery_id, "b", 2)
        assert tags.rename_tag(conn, gallery_id, "b", "c") == Tag(gallery_id, 1, "c")
        assert tags.rename_tag(conn, gallery_id, "c", "c") == Tag(gallery_id, 1, "c")
    with database.read() as conn:
        assert [tag.name for tag in tags.list_tags(conn, gallery_id)] == ["a", "c"]
    error = _error(database, lambda conn: tags.rename_tag(conn, gallery_id, "b", "d"))
    assert (error.error_type, error.message) == (ErrorType.NOT_FOUND, "Tag b not found.")


def test_delete_tag_clears_its_bit_from_old_events(database: Database, gallery_id: str) -> None:
    with database.write() as conn:
        for index in range(64):
            tags.create_tag(conn, gallery_id, f"t{index}", index)
        everything = tags.tag_mask(conn, gallery_id, [f"t{index}" for index in range(64)])
        row = new_event(conn, gallery_id, tag_mask=everything)
        deleted = new_event(conn, gallery_id, "s2", tag_mask=1 << 63 | 1 << 5)
        events.mark_event_deleted(conn, gallery_id, "s2", deleted.event_id, 2_000)
        other_gallery = new_gallery(conn, new_tenant(conn, "beta").id)
        untouched = new_event(conn, other_gallery.id, tag_mask=everything)
    assert everything == (1 << 64) - 1
    with database.write() as conn:
        assert tags.delete_tag(conn, gallery_id, "t63") == Tag(gallery_id, 63, "t63")
        assert tags.delete_tag(conn, gallery_id, "t5") == Tag(gallery_id, 5, "t5")
        assert tags.create_tag(conn, gallery_id, "new", 3_000) == Tag(gallery_id, 5, "new")
    with database.read() as conn:
        page, _ = events.list_event_rows(conn, gallery_id, start=0, length=10, descending=False)
        rows = {r.event_id: r for r in page}
        assert rows[row.event_id].tag_mask == everything & ~(1 << 63 | 1 << 5)
        assert rows[deleted.event_id].tag_mask == 0
        assert "new" not in tags.tag_names(conn, gallery_id, rows[row.event_id].tag_mask)
        assert events.active_event(conn, other_gallery.id, untouched.event_id) == untouched
    error = _error(database, lambda conn: tags.delete_tag(conn, gallery_id, "t5"))
    assert (error.error_type, error.message) == (ErrorType.NOT_FOUND, "Tag t5 not found.")


def test_tag_mask_and_tag_names_translate_between_names_and_bits(
    database: Database, gallery_id: str
) -> None:
    with database.write() as conn:
        for index in range(64):
            tags.create_tag(conn, gallery_id, f"t{index}", 64 - index)  # newest first
    with database.read() as conn:
        assert tags.tag_mask(conn, gallery_id, []) == 0
        assert tags.tag_mask(conn, gallery_id, ["t63", "t1", "t63"]) == 1 << 63 | 1 << 1
        assert tags.tag_names(conn, gallery_id, 1 << 63 | 1 << 1) == ["t63", "t1"]
        assert tags.tag_names(conn, gallery_id, 0) == []
    error = _error(database, lambda conn: tags.tag_mask(conn, gallery_id, ["t1", "nope", "nada"]))
    assert (error.error_type, error.message) == (
        ErrorType.INVALID_REQUEST,
        "Tag nope does not exist.",
    )


def test_tag_changes_need_the_gallery(database: Database) -> None:
    error = _error(database, lambda conn: tags.create_tag(conn, "missing", "vip", 1))
    assert error.error_type is ErrorType.NOT_FOUND
