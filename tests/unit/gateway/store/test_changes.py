"""The matcher outbox, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from gateway.store import changes
from gateway.store.database import Database
from gateway.store.records import Change


def test_changes_are_pending_in_id_order_until_removed(database: Database) -> None:
    with database.write() as conn:
        ids = [
            changes.add_change(conn, gallery_id="g1", kind="event", event_id="e1", now_ms=10),
            changes.add_change(conn, gallery_id="g1", kind="clear_tag_bit", bit=63, now_ms=20),
            changes.add_change(conn, gallery_id="g2", kind="drop_gallery", now_ms=30),
        ]
    assert ids == sorted(ids)
    assert len(set(ids)) == 3
    expected = [
        Change(ids[0], "g1", "event", "e1", None),
        Change(ids[1], "g1", "clear_tag_bit", None, 63),
        Change(ids[2], "g2", "drop_gallery", None, None),
    ]
    with database.read() as conn:
        assert changes.pending_changes(conn, 10) == expected
        assert changes.pending_changes(conn, 2) == expected[:2]
        assert changes.pending_changes(conn, 10, older_than_ms=30) == expected[:2]
        assert changes.pending_changes(conn, 10, older_than_ms=10) == []
    with database.write() as conn:
        changes.remove_changes(conn, [ids[0], ids[2], 999_999])
        changes.remove_changes(conn, [])
    with database.read() as conn:
        assert changes.pending_changes(conn, 10) == [expected[1]]


def test_change_ids_are_never_reused(database: Database) -> None:
    # An acknowledgement that arrives late must not remove a newer change.
    with database.write() as conn:
        first = changes.add_change(conn, gallery_id="g", kind="event", event_id="a", now_ms=1)
    with database.write() as conn:
        changes.remove_changes(conn, [first])
    with database.write() as conn:
        second = changes.add_change(conn, gallery_id="g", kind="event", event_id="b", now_ms=2)
    assert second > first


def test_many_changes_are_removed_at_once(database: Database) -> None:
    with database.write() as conn:
        ids = [
            changes.add_change(conn, gallery_id="g", kind="event", event_id=str(i), now_ms=i)
            for i in range(1_100)
        ]
    with database.write() as conn:
        changes.remove_changes(conn, ids[:-1])
    with database.read() as conn:
        assert [change.id for change in changes.pending_changes(conn, 5_000)] == ids[-1:]


def test_unknown_kinds_are_refused(database: Database) -> None:
    with pytest.raises(ValueError, match="unknown change kind"), database.write() as conn:
        changes.add_change(conn, gallery_id="g", kind="rename", now_ms=1)


def test_event_changes_are_added_in_order(database: Database) -> None:
    with database.write() as conn:
        first = changes.add_change(conn, gallery_id="g1", kind="event", event_id="e0", now_ms=5)
        ids = changes.add_event_changes(
            conn, gallery_id="g1", event_ids=["e2", "e1", "e3"], now_ms=6
        )
        assert changes.add_event_changes(conn, gallery_id="g1", event_ids=[], now_ms=7) == []
    assert first < ids[0] < ids[1] < ids[2]
    with database.read() as conn:
        assert changes.pending_changes(conn, 10) == [
            Change(first, "g1", "event", "e0", None),
            Change(ids[0], "g1", "event", "e2", None),
            Change(ids[1], "g1", "event", "e1", None),
            Change(ids[2], "g1", "event", "e3", None),
        ]
