"""Subjects, event rows and gallery slots, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from facegate.errors import ErrorType, FacegateError
from gateway.store import events, galleries
from gateway.store.database import Database
from gateway.store.records import EventListing, EventRow, NewEvent
from gateway.store.schema import events as events_table
from tests.support.store import new_event, new_gallery, new_id, new_tenant

TOP_BIT = 1 << 63
ALL_BITS = (1 << 64) - 1


def _gallery(database: Database, size: int = 100) -> str:
    with database.write() as conn:
        return new_gallery(conn, new_tenant(conn, new_id()).id, size=size).id


def _all_rows(database: Database, gallery_id: str) -> list[EventRow]:
    with database.read() as conn:
        rows, total = events.list_event_rows(
            conn, gallery_id, start=0, length=1_000, descending=False
        )
    assert total == len(rows)
    return rows


def test_insert_event_returns_and_stores_the_row(database: Database) -> None:
    gallery_id = _gallery(database)
    with database.write() as conn:
        events.create_subject(conn, gallery_id, "s1", 1_000)
        row = events.insert_event(
            conn,
            gallery_id=gallery_id,
            event_id="e1",
            subject_id="s1",
            tag_mask=TOP_BIT | 1,
            model_id="m",
            template=bytes(range(256)),
            attributes_json='{"x": 1}',
            now_ms=1_234,
        )
    assert row == EventRow(
        row_id=row.row_id,
        gallery_id=gallery_id,
        event_id="e1",
        subject_id="s1",
        status="A",
        tag_mask=TOP_BIT | 1,
        model_id="m",
        template=bytes(range(256)),
        attributes_json='{"x": 1}',
        last_updated_ms=1_234,
    )
    with database.read() as conn:
        assert events.active_event(conn, gallery_id, "e1") == row
        assert events.active_events(conn, gallery_id, "s1") == [row]


@pytest.mark.parametrize("mask", [0, 1, TOP_BIT, TOP_BIT | 1, ALL_BITS, ALL_BITS >> 1])
def test_tag_masks_round_trip_through_signed_storage(database: Database, mask: int) -> None:
    gallery_id = _gallery(database)
    with database.write() as conn:
        row = new_event(conn, gallery_id, tag_mask=mask)
    with database.read() as conn:
        found = events.active_event(conn, gallery_id, row.event_id)
        stored = conn.execute(select(events_table.c.tag_mask)).scalar_one()
    assert found is not None
    assert found.tag_mask == mask
    assert stored == (mask - (1 << 64) if mask & TOP_BIT else mask)


@pytest.mark.parametrize("mask", [-1, 1 << 64])
def test_tag_masks_outside_64_bits_are_refused(database: Database, mask: int) -> None:
    gallery_id = _gallery(database)
    with pytest.raises(ValueError, match="outside"), database.write() as conn:
        new_event(conn, gallery_id, tag_mask=mask)


def test_subject_exists_while_it_has_an_active_event(database: Database) -> None:
    gallery_id = _gallery(database)
    with database.write() as conn:
        assert not events.subject_exists(conn, gallery_id, "s1")
        events.create_subject(conn, gallery_id, "s1", 1)
        assert not events.subject_exists(conn, gallery_id, "s1")  # no event yet
        first = new_event(conn, gallery_id, "s1", now_ms=10)
        second = new_event(conn, gallery_id, "s1", now_ms=20)
        new_event(conn, gallery_id, "s2")
        assert events.subject_exists(conn, gallery_id, "s1")
        assert not events.subject_exists(conn, "other-gallery", "s1")
        assert events.active_events(conn, gallery_id, "s1") == [first, second]
    with database.write() as conn:
        retired = events.mark_subject_deleted(conn, gallery_id, "s1", 30)
        assert retired == [first.event_id, second.event_id]
        assert events.mark_subject_deleted(conn, gallery_id, "s1", 40) == []
        assert not events.subject_exists(conn, gallery_id, "s1")
        assert events.subject_exists(conn, gallery_id, "s2")
        assert events.active_events(conn, gallery_id, "s1") == []
        again = new_event(conn, gallery_id, "s1", now_ms=50)  # enrolled anew
        assert events.subject_exists(conn, gallery_id, "s1")
    statuses = [(r.event_id, r.status, r.last_updated_ms) for r in _all_rows(database, gallery_id)]
    assert (first.event_id, "D", 30) in statuses
    assert (second.event_id, "D", 30) in statuses
    assert (again.event_id, "A", 50) in statuses


def test_mark_event_deleted_needs_the_active_event_of_that_subject(database: Database) -> None:
    gallery_id = _gallery(database)
    with database.write() as conn:
        row = new_event(conn, gallery_id, "s1")
        assert not events.mark_event_deleted(conn, gallery_id, "s2", row.event_id, 5)
        assert not events.mark_event_deleted(conn, gallery_id, "s1", "other", 5)
        assert events.mark_event_deleted(conn, gallery_id, "s1", row.event_id, 5)
        assert not events.mark_event_deleted(conn, gallery_id, "s1", row.event_id, 6)
        assert events.active_event(conn, gallery_id, row.event_id) is None
    [deleted] = _all_rows(database, gallery_id)
    assert (deleted.row_id, deleted.status, deleted.last_updated_ms) == (row.row_id, "D", 5)


def test_an_updated_event_keeps_its_ids_in_a_new_active_row(database: Database) -> None:
    gallery_id = _gallery(database)
    with database.write() as conn:
        old = new_event(conn, gallery_id, "s1", now_ms=10)
        new = new_event(conn, gallery_id, "s1", event_id=old.event_id, tag_mask=4, now_ms=20)
    assert new.row_id != old.row_id
    assert _all_rows(database, gallery_id) == [
        EventRow(**{**vars(old), "status": "D", "last_updated_ms": 20}),
        new,
    ]


def test_active_event_ids_drops_deleted_and_unknown_ids(database: Database) -> None:
    gallery_id = _gallery(database)
    with database.write() as conn:
        kept = [new_event(conn, gallery_id, f"s{i}").event_id for i in range(3)]
        gone = new_event(conn, gallery_id, "s9")
        events.mark_event_deleted(conn, gallery_id, "s9", gone.event_id, 5)
    asked = [*kept, gone.event_id, *(f"unknown-{i}" for i in range(1_200))]
    with database.read() as conn:
        assert events.active_event_ids(conn, gallery_id, asked) == set(kept)
        assert events.active_event_ids(conn, "other", asked) == set()
        assert events.active_event_ids(conn, gallery_id, []) == set()


def test_count_active_events_counts_what_a_search_compares(database: Database) -> None:
    gallery_id, other = _gallery(database), _gallery(database)
    with database.write() as conn:
        for i in range(4):
            new_event(conn, gallery_id, f"s{i}")
        gone = new_event(conn, gallery_id, "s9")
        events.mark_event_deleted(conn, gallery_id, "s9", gone.event_id, 5)
        new_event(conn, other, "s1")
    with database.read() as conn:
        assert events.count_active_events(conn, gallery_id) == 4
        assert events.count_event_rows(conn, gallery_id) == 5
        assert events.count_active_events(conn, "missing") == 0


def test_list_event_rows_pages_by_last_update_both_ways(database: Database) -> None:
    gallery_id, other_id = _gallery(database), _gallery(database)
    with database.write() as conn:
        times = [50, 10, 30, 30, 20]
        rows = [new_event(conn, gallery_id, f"s{i}", now_ms=t) for i, t in enumerate(times)]
        new_event(conn, other_id, now_ms=1)
        assert events.count_event_rows(conn, gallery_id) == 5
    ascending = sorted(rows, key=lambda r: (r.last_updated_ms, r.row_id))
    with database.read() as conn:
        page = events.list_event_rows(conn, gallery_id, start=1, length=3, descending=False)
        assert page == (ascending[1:4], 5)
        page = events.list_event_rows(conn, gallery_id, start=0, length=2, descending=True)
        assert page == (ascending[::-1][:2], 5)
        page = events.list_event_rows(conn, gallery_id, start=4, length=10, descending=True)
        assert page == ([ascending[0]], 5)
        assert events.list_event_rows(conn, gallery_id, start=5, length=3, descending=False) == (
            [],
            5,
        )
        assert events.list_event_rows(conn, "none", start=0, length=3, descending=False) == (
            [],
            0,
        )
        # The listing the API serves: the same rows and order, without templates.
        for start, length, descending in ((1, 3, False), (0, 2, True), (4, 10, True)):
            full, total = events.list_event_rows(
                conn, gallery_id, start=start, length=length, descending=descending
            )
            assert events.list_event_listing(
                conn, gallery_id, start=start, length=length, descending=descending
            ) == (
                [
                    EventListing(r.row_id, r.subject_id, r.event_id, r.status, r.last_updated_ms)
                    for r in full
                ],
                total,
            )


def test_a_full_gallery_recycles_its_oldest_deleted_rows(database: Database) -> None:
    gallery_id = _gallery(database, size=3)
    with database.write() as conn:
        first, second, third = (new_event(conn, gallery_id, f"s{i}", now_ms=i) for i in range(3))
        events.mark_event_deleted(conn, gallery_id, "s2", third.event_id, 10)
        events.mark_event_deleted(conn, gallery_id, "s0", first.event_id, 20)
        fourth = new_event(conn, gallery_id, "s3", now_ms=30)  # recycles third's row
    assert _all_rows(database, gallery_id) == [
        second,
        EventRow(**{**vars(first), "status": "D", "last_updated_ms": 20}),
        fourth,
    ]
    with database.write() as conn:
        fifth = new_event(conn, gallery_id, "s4", now_ms=40)  # recycles first's row
    assert [row.row_id for row in _all_rows(database, gallery_id)] == [
        second.row_id,
        fourth.row_id,
        fifth.row_id,
    ]
    with pytest.raises(FacegateError) as info, database.write() as conn:
        new_event(conn, gallery_id, "s5", now_ms=50)
    assert (info.value.error_type, info.value.message) == (
        ErrorType.INVALID_REQUEST,
        "Gallery is full: 3 of 3 slots in use.",
    )
    with database.write() as conn:
        # Updating an event frees its old row first, so it succeeds even when full.
        new_event(conn, gallery_id, "s4", event_id=fifth.event_id, now_ms=60)
        gallery = galleries.gallery_by_id(conn, gallery_id)
    assert gallery is not None
    assert gallery.count == 3


def test_a_shrunk_gallery_recycles_enough_rows_or_none(database: Database) -> None:
    gallery_id = _gallery(database, size=4)
    with database.write() as conn:
        rows = [new_event(conn, gallery_id, f"s{i}", now_ms=i) for i in range(4)]
        events.mark_event_deleted(conn, gallery_id, "s0", rows[0].event_id, 10)
        galleries.update_gallery(conn, gallery_id, size=2)
    with pytest.raises(FacegateError), database.write() as conn:
        new_event(conn, gallery_id, "s9")  # needs three recycled rows, has one
    assert len(_all_rows(database, gallery_id)) == 4
    with database.write() as conn:
        events.mark_subject_deleted(conn, gallery_id, "s1", 20)
        events.mark_subject_deleted(conn, gallery_id, "s2", 30)
        added = new_event(conn, gallery_id, "s9", now_ms=40)
    assert [row.event_id for row in _all_rows(database, gallery_id)] == [
        rows[3].event_id,
        added.event_id,
    ]


def test_concurrent_inserts_never_exceed_the_gallery_size(database: Database) -> None:
    size, threads, attempts = 12, 8, 3
    gallery_id = _gallery(database, size=size)
    with database.write() as conn:
        for i in range(size - 2):
            new_event(conn, gallery_id, f"s{i}", now_ms=i)
        events.mark_subject_deleted(conn, gallery_id, "s0", 100)
    outcomes: list[str] = []
    barrier = threading.Barrier(threads)

    def insert(worker: int) -> None:
        barrier.wait()
        for attempt in range(attempts):
            try:
                with database.write() as conn:
                    new_event(conn, gallery_id, f"w{worker}-{attempt}", now_ms=200)
                outcomes.append("added")
            except FacegateError as error:
                outcomes.append(error.message)
            except BaseException as error:
                outcomes.append(repr(error))

    workers = [threading.Thread(target=insert, args=(worker,)) for worker in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    # Two free slots and one deleted row to recycle: three inserts fit.
    assert sorted(outcomes) == ["Gallery is full: 12 of 12 slots in use."] * 21 + ["added"] * 3
    rows = _all_rows(database, gallery_id)
    assert len(rows) == size
    assert all(row.status == "A" for row in rows)


def test_events_need_the_gallery(database: Database) -> None:
    with pytest.raises(FacegateError) as subject_info, database.write() as conn:
        events.create_subject(conn, "missing", "s1", 1)
    with pytest.raises(FacegateError) as event_info, database.write() as conn:
        events.insert_event(
            conn,
            gallery_id="missing",
            event_id="e",
            subject_id="s",
            tag_mask=0,
            model_id="m",
            template=b"",
            attributes_json="{}",
            now_ms=1,
        )
    assert subject_info.value.error_type is ErrorType.NOT_FOUND
    assert event_info.value.error_type is ErrorType.NOT_FOUND


def test_insert_events_adds_as_many_as_the_gallery_holds(database: Database) -> None:
    gallery_id = _gallery(database, size=5)
    with database.write() as conn:
        kept = new_event(conn, gallery_id, "s0", now_ms=1)
        updated = new_event(conn, gallery_id, "s1", now_ms=2)
        gone = new_event(conn, gallery_id, "s2", now_ms=3)
        events.mark_event_deleted(conn, gallery_id, "s2", gone.event_id, 4)
    batch = [
        NewEvent(updated.event_id, "s1", 1, "m", b"\x01", "{}"),  # retires its active row
        *(
            NewEvent(f"e{i}", f"t{i}", TOP_BIT | i, "m", bytes([i]), f'{{"i": {i}}}')
            for i in range(4)
        ),
    ]
    with database.write() as conn:
        events.create_subjects(conn, gallery_id, ["t0", "t1", "t0"], 50)
        added = events.insert_events(conn, gallery_id, batch, 50)
        assert events.insert_events(conn, gallery_id, [], 60).rows == []
    # Five slots: kept and four new rows, after recycling gone's row and the row the
    # update retired; the last event has no slot.
    assert added.gallery_size == 5
    assert [row.event_id for row in added.rows] == [updated.event_id, "e0", "e1", "e2"]
    assert added.rows[2].tag_mask == TOP_BIT | 1
    assert _all_rows(database, gallery_id) == [kept, *added.rows]
    with database.read() as conn:
        assert events.subject_exists(conn, gallery_id, "t0")
        assert not events.subject_exists(conn, gallery_id, "t2")
    with pytest.raises(FacegateError) as info, database.write() as conn:
        events.insert_events(conn, "missing", batch, 1)
    assert info.value.error_type is ErrorType.NOT_FOUND


def test_insert_events_into_an_overfull_gallery_adds_and_recycles_nothing(
    database: Database,
) -> None:
    gallery_id = _gallery(database, size=4)
    with database.write() as conn:
        rows = [new_event(conn, gallery_id, f"s{i}", now_ms=i) for i in range(4)]
        events.mark_event_deleted(conn, gallery_id, "s0", rows[0].event_id, 10)
        galleries.update_gallery(conn, gallery_id, size=2)
    batch = [NewEvent(f"e{i}", f"t{i}", 0, "m", b"", "{}") for i in range(5)]
    with database.write() as conn:
        # One deleted row to recycle, two rows over the size: not even one event fits.
        added = events.insert_events(conn, gallery_id, batch, 20)
    assert added.rows == []
    assert len(_all_rows(database, gallery_id)) == 4  # the deleted row is still listed


def test_insert_events_retires_only_the_events_it_adds(database: Database) -> None:
    gallery_id = _gallery(database, size=1)
    with database.write() as conn:
        kept = new_event(conn, gallery_id, "s0", now_ms=1)
    update = NewEvent(kept.event_id, "s0", 0, "m", b"\x01", "{}")
    with database.write() as conn:
        # The gallery is full: the new event has no slot, so the update after it is
        # not added either, and the event it would replace stays active.
        added = events.insert_events(
            conn, gallery_id, [NewEvent("e1", "s1", 0, "m", b"", "{}"), update], 5
        )
    assert added.rows == []
    assert _all_rows(database, gallery_id) == [kept]
    with database.read() as conn:
        assert events.count_event_rows(conn, gallery_id) == 1
