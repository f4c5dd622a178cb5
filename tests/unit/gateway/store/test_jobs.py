"""Bulk registration jobs, their records and bulk sources, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import Counter

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from facegate.errors import ErrorType, FacegateError
from gateway.store import galleries, jobs
from gateway.store.database import Database
from gateway.store.records import BulkSource, JobRecordRow, JobRow, RecordOutcome, RecordRetry
from gateway.store.schema import bulk_sources, job_records
from gateway.store.schema import jobs as jobs_table
from tests.support.store import new_gallery, new_id, new_tenant

TOP_BIT = 1 << 63
LEASE = 30_000


def _folder(gallery_id: str = "") -> BulkSource:
    return BulkSource(gallery_id, "file:///srv/bulk", "", "", "", None)


def _bucket(gallery_id: str = "") -> BulkSource:
    return BulkSource(
        gallery_id, "s3://bucket/in/", "http://minio:9000", "eu-west-1", "AK", b"\x00sealed\xff"
    )


def _gallery(database: Database) -> str:
    with database.write() as conn:
        return new_gallery(conn, new_tenant(conn, new_id()).id).id


def _job(database: Database, gallery_id: str, count: int, *, now_ms: int = 1_000) -> JobRow:
    job_id = new_id()
    with database.write() as conn:
        return jobs.create_job(
            conn,
            id=job_id,
            gallery_id=gallery_id,
            application_id="app-1",
            source=_folder(),
            records=[(f"{job_id}-{seq}", f"{seq}.jpg", 0) for seq in range(count)],
            now_ms=now_ms,
        )


def _claim(database: Database, now_ms: int, limit: int) -> list[tuple[JobRow, JobRecordRow]]:
    with database.write() as conn:
        return jobs.claim_records(conn, now_ms=now_ms, lease_ms=LEASE, limit=limit)


def _seqs(claimed: list[tuple[JobRow, JobRecordRow]], job: JobRow) -> list[int]:
    return [record.seq for owner, record in claimed if owner.id == job.id]


def _records(database: Database, job: JobRow) -> list[JobRecordRow]:
    with database.read() as conn:
        return jobs.job_page(conn, job.id, after_seq=-1, limit=1_000)


def _finish(database: Database, record: JobRecordRow, *, success: bool = True) -> bool:
    outcome = RecordOutcome(
        record.seq,
        "Success" if success else "Failed",
        reason="" if success else "No face found.",
        subject_id=f"subject-{record.seq}" if success else "",
        event_id=f"event-{record.seq}" if success else "",
        attributes_json='{"age": 30}' if success else "",
    )
    with database.write() as conn:
        return jobs.finish_records(conn, record.job_id, [outcome], 9_000) == {record.seq}


def test_create_job_keeps_the_records_in_request_order(database: Database) -> None:
    gallery_id = _gallery(database)
    with database.write() as conn:
        job = jobs.create_job(
            conn,
            id="batch-1",
            gallery_id=gallery_id,
            application_id="app-1",
            source=_bucket("ignored"),
            records=[("r-b", "b.jpg", TOP_BIT | 5), ("r-a", "a.jpg", 0), ("r-c", "c.jpg", 2)],
            now_ms=1_234,
        )
    assert job == JobRow("batch-1", gallery_id, "app-1", _bucket(gallery_id), 3, 1_234)
    with database.read() as conn:
        assert jobs.get_job(conn, gallery_id, "batch-1") == job
        records = jobs.job_page(conn, "batch-1", after_seq=-1, limit=10)
    assert records[0] == JobRecordRow(
        job_id="batch-1",
        seq=0,
        id="r-b",
        filename="b.jpg",
        tag_mask=TOP_BIT | 5,
        attempts=0,
        status="New",
        register_status="",
        reason="",
        subject_id="",
        event_id="",
        attributes_json="",
        next_attempt_ms=0,
        lease_until_ms=0,
        processed_ms=0,
    )
    assert [(r.seq, r.id, r.filename, r.tag_mask) for r in records[1:]] == [
        (1, "r-a", "a.jpg", 0),
        (2, "r-c", "c.jpg", 2),
    ]


def test_jobs_are_found_in_their_gallery_only(database: Database) -> None:
    mine, theirs = _gallery(database), _gallery(database)
    job = _job(database, mine, 1)
    with database.read() as conn:
        assert jobs.get_job(conn, mine, job.id) == job
        assert jobs.get_job(conn, theirs, job.id) is None
        assert jobs.get_job(conn, mine, "missing") is None


def test_create_job_refuses_a_missing_gallery_and_bad_records(database: Database) -> None:
    gallery_id = _gallery(database)
    with pytest.raises(FacegateError) as info, database.write() as conn:
        jobs.create_job(
            conn,
            id="j",
            gallery_id="missing",
            application_id="a",
            source=_folder(),
            records=[("r", "f.jpg", 0)],
            now_ms=1,
        )
    assert (info.value.error_type, info.value.message) == (
        ErrorType.NOT_FOUND,
        "Gallery not found.",
    )
    with pytest.raises(ValueError, match="outside"), database.write() as conn:
        jobs.create_job(
            conn,
            id="j",
            gallery_id=gallery_id,
            application_id="a",
            source=_folder(),
            records=[("r", "f.jpg", 1 << 64)],
            now_ms=1,
        )
    with pytest.raises(IntegrityError), database.write() as conn:
        jobs.create_job(
            conn,
            id="j",
            gallery_id=gallery_id,
            application_id="a",
            source=_folder(),
            records=[("same", "1.jpg", 0), ("same", "2.jpg", 0)],
            now_ms=1,
        )
    with database.read() as conn:
        assert conn.execute(select(func.count()).select_from(jobs_table)).scalar_one() == 0


def test_job_page_pages_by_seq(database: Database) -> None:
    job = _job(database, _gallery(database), 7)
    pages: list[list[int]] = []
    after = -1
    with database.read() as conn:
        while page := jobs.job_page(conn, job.id, after_seq=after, limit=3):
            pages.append([record.seq for record in page])
            after = page[-1].seq
        assert jobs.job_page(conn, "missing", after_seq=-1, limit=3) == []
    assert pages == [[0, 1, 2], [3, 4, 5], [6]]


@pytest.mark.slow
def test_a_job_of_100k_records_is_created_within_seconds(database: Database) -> None:
    gallery_id = _gallery(database)
    records = [(new_id(), f"img-{seq:06}.jpg", seq) for seq in range(100_000)]
    started = time.perf_counter()
    with database.write() as conn:
        jobs.create_job(
            conn,
            id="big",
            gallery_id=gallery_id,
            application_id="a",
            source=_folder(),
            records=records,
            now_ms=1,
        )
    elapsed = time.perf_counter() - started
    # Measured ~1.5 s on SQLite and ~3 s on PostgreSQL on a busy 2-core machine.
    assert elapsed < 10, f"{elapsed:.1f} s"
    with database.read() as conn:
        assert jobs.job_counts(conn, "big") == (100_000, 0, 0)
        [last] = jobs.job_page(conn, "big", after_seq=99_998, limit=1_000)
    assert (last.seq, last.id, last.filename, last.tag_mask) == (99_999, *records[-1])


def test_claiming_leases_records_and_counts_attempts(database: Database) -> None:
    job = _job(database, _gallery(database), 3)
    first = _claim(database, 1_000, 2)
    assert [owner for owner, _ in first] == [job, job]
    assert [(r.seq, r.attempts, r.lease_until_ms) for _, r in first] == [
        (0, 1, 1_000 + LEASE),
        (1, 1, 1_000 + LEASE),
    ]
    assert [record for _, record in first] == _records(database, job)[:2]
    assert _seqs(_claim(database, 1_001, 5), job) == [2]
    assert _claim(database, 1_002, 5) == []  # all leased
    # Expired leases make the records claimable again: a worker died holding them.
    again = _claim(database, 1_000 + LEASE, 5)
    assert [(r.seq, r.attempts) for _, r in again] == [(0, 2), (1, 2)]
    assert _seqs(_claim(database, 1_001 + LEASE, 5), job) == [2]


def test_claim_refuses_a_non_positive_lease_or_limit(database: Database) -> None:
    with pytest.raises(ValueError, match="positive"), database.write() as conn:
        jobs.claim_records(conn, now_ms=1, lease_ms=0, limit=1)
    with pytest.raises(ValueError, match="positive"), database.write() as conn:
        jobs.claim_records(conn, now_ms=1, lease_ms=1, limit=0)


def test_retry_releases_the_lease_until_the_next_attempt(database: Database) -> None:
    job = _job(database, _gallery(database), 2)
    [(_, record), _] = _claim(database, 1_000, 2)
    with database.write() as conn:
        jobs.retry_records(conn, job.id, [RecordRetry(0, 5_000, "Extractor timed out.")])
    retried = _records(database, job)[0]
    assert retried == dataclasses.replace(
        record, lease_until_ms=0, next_attempt_ms=5_000, reason="Extractor timed out."
    )
    assert _claim(database, 4_999, 5) == []
    [(_, reclaimed)] = _claim(database, 5_000, 5)
    assert (reclaimed.seq, reclaimed.attempts, reclaimed.status) == (0, 2, "New")
    assert _finish(database, reclaimed)
    with database.write() as conn:
        jobs.retry_records(conn, job.id, [RecordRetry(0, 99_000, "late")])
    assert _records(database, job)[0].reason == ""  # a processed record stays processed


def test_finish_record_processes_a_record_once(database: Database) -> None:
    job = _job(database, _gallery(database), 2)
    [(_, record), _] = _claim(database, 1_000, 2)
    assert _finish(database, record)
    done = _records(database, job)[0]
    assert done == dataclasses.replace(
        record,
        status="Processed",
        register_status="Success",
        subject_id="subject-0",
        event_id="event-0",
        attributes_json='{"age": 30}',
        lease_until_ms=0,
        processed_ms=9_000,
    )
    assert not _finish(database, record, success=False)
    assert _records(database, job)[0] == done
    # Processed records are never claimed again, even after their lease would have expired.
    assert _seqs(_claim(database, 1_000 + LEASE, 5), job) == [1]
    unknown = RecordOutcome(1, "")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="register status"), database.write() as conn:
        jobs.finish_records(conn, job.id, [unknown], now_ms=1)


def test_concurrent_finishes_of_a_record_succeed_once(database: Database) -> None:
    job = _job(database, _gallery(database), 1)
    [(_, record)] = _claim(database, 1_000, 1)
    outcomes: list[bool] = []
    barrier = threading.Barrier(4)

    def finish() -> None:
        barrier.wait()
        outcomes.append(_finish(database, record))

    threads = [threading.Thread(target=finish) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == [False, False, False, True]
    assert _records(database, job)[0].status == "Processed"


def test_counts_and_pending_jobs_follow_the_outcomes(database: Database) -> None:
    gallery_id = _gallery(database)
    older, newer = _job(database, gallery_id, 3, now_ms=1), _job(database, gallery_id, 1, now_ms=2)
    with database.read() as conn:
        assert jobs.job_counts(conn, older.id) == (3, 0, 0)
        assert jobs.job_counts(conn, "missing") == (0, 0, 0)
        assert jobs.pending_job_ids(conn) == [older.id, newer.id]
    claimed = [record for _, record in _claim(database, 1_000, 10)]
    assert _finish(database, claimed[0])
    assert _finish(database, claimed[1], success=False)
    assert _finish(database, claimed[3])  # newer's only record
    with database.read() as conn:
        assert jobs.job_counts(conn, older.id) == (1, 1, 1)
        assert jobs.job_counts(conn, newer.id) == (0, 1, 0)
        assert jobs.pending_job_ids(conn) == [older.id]


def test_claims_share_a_batch_between_jobs(database: Database) -> None:
    gallery_id = _gallery(database)
    big = _job(database, gallery_id, 100, now_ms=1)
    small = _job(database, gallery_id, 3, now_ms=2)
    claimed = _claim(database, 1_000, 10)
    # Equal shares; what the small job cannot use goes to the big one.
    assert (_seqs(claimed, big), _seqs(claimed, small)) == ([0, 1, 2, 3, 4, 5, 6], [0, 1, 2])
    assert _seqs(_claim(database, 1_001, 4), big) == [7, 8, 9, 10]


def test_a_big_old_job_does_not_starve_a_new_small_one(database: Database) -> None:
    gallery_id = _gallery(database)
    big = _job(database, gallery_id, 1_000, now_ms=1)
    for now_ms in (1_000, 1_001):
        assert len(_seqs(_claim(database, now_ms, 8), big)) == 8
    small = _job(database, gallery_id, 2, now_ms=1_002)
    claimed = _claim(database, 1_003, 8)
    assert (_seqs(claimed, small), _seqs(claimed, big)) == ([0, 1], [16, 17, 18, 19, 20, 21])
    # With fewer records per batch than jobs, the jobs take turns, least recently served
    # first (small's records are all leased).
    third = _job(database, gallery_id, 5, now_ms=1_004)
    turns = [[owner.id for owner, _ in _claim(database, 2_000 + turn, 1)] for turn in range(4)]
    assert turns == [[third.id], [big.id], [third.id], [big.id]]


def test_concurrent_claimers_never_share_a_record(database: Database) -> None:
    gallery_id = _gallery(database)
    created = [_job(database, gallery_id, count, now_ms=count) for count in (150, 60, 25)]
    claims: list[tuple[str, int]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def claimer() -> None:
        try:
            barrier.wait()
            while batch := _claim(database, 1_000, 7):
                claims.extend((owner.id, record.seq) for owner, record in batch)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=claimer) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    repeated = [claim for claim, times in Counter(claims).items() if times > 1]
    assert repeated == []
    assert sorted(claims) == sorted(
        (job.id, seq) for job in created for seq in range(job.record_count)
    )


def test_bulk_sources_are_set_and_replaced(database: Database) -> None:
    gallery_id, other = _gallery(database), _gallery(database)
    with database.write() as conn:
        assert jobs.bulk_source(conn, gallery_id) is None
        jobs.set_bulk_source(conn, _bucket(gallery_id), 10)
        jobs.set_bulk_source(conn, _folder(other), 10)
    with database.read() as conn:
        assert jobs.bulk_source(conn, gallery_id) == _bucket(gallery_id)
    with database.write() as conn:
        jobs.set_bulk_source(conn, _folder(gallery_id), 20)
    with database.read() as conn:
        assert jobs.bulk_source(conn, gallery_id) == _folder(gallery_id)
        assert jobs.bulk_source(conn, other) == _folder(other)
        assert sorted(conn.execute(select(bulk_sources.c.updated_ms)).scalars()) == [10, 20]
    with pytest.raises(FacegateError) as info, database.write() as conn:
        jobs.set_bulk_source(conn, _folder("missing"), 30)
    assert info.value.error_type is ErrorType.NOT_FOUND


def test_deleting_a_gallery_deletes_its_jobs_and_source(database: Database) -> None:
    doomed, kept = _gallery(database), _gallery(database)
    for gallery_id in (doomed, kept):
        _job(database, gallery_id, 3)
        with database.write() as conn:
            jobs.set_bulk_source(conn, _bucket(gallery_id), 1)
    with database.write() as conn:
        galleries.delete_gallery(conn, doomed)
    with database.read() as conn:
        remaining = {
            table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
            for table in (jobs_table, job_records, bulk_sources)
        }
        assert jobs.bulk_source(conn, kept) == _bucket(kept)
        assert jobs.pending_job_ids(conn) != []
    assert remaining == {"jobs": 1, "job_records": 3, "bulk_sources": 1}


def test_finish_records_records_only_the_new_ones(database: Database) -> None:
    job = _job(database, _gallery(database), 4)
    claimed = [record for _, record in _claim(database, 1_000, 4)]
    assert _finish(database, claimed[1])
    outcomes = [
        RecordOutcome(0, "Success", "", "s0", "e0", '{"age": 1}'),
        RecordOutcome(1, "Failed", "No face found."),  # already processed: left alone
        RecordOutcome(3, "Failed", "Not an image."),
    ]
    with database.write() as conn:
        assert jobs.new_record_seqs(conn, job.id, [0, 1, 2, 3, 99]) == {0, 2, 3}
        assert jobs.finish_records(conn, job.id, outcomes, 7_000) == {0, 3}
        jobs.retry_records(
            conn, job.id, [RecordRetry(2, 8_000, "S3 timed out."), RecordRetry(3, 9, "x")]
        )
    records = _records(database, job)
    assert [
        (r.status, r.register_status, r.reason, r.subject_id, r.event_id, r.attributes_json)
        for r in records
    ] == [
        ("Processed", "Success", "", "s0", "e0", '{"age": 1}'),
        ("Processed", "Success", "", "subject-1", "event-1", '{"age": 30}'),
        ("New", "", "S3 timed out.", "", "", ""),
        ("Processed", "Failed", "Not an image.", "", "", ""),
    ]
    assert [(r.processed_ms, r.lease_until_ms, r.next_attempt_ms) for r in records] == [
        (7_000, 0, 0),
        (9_000, 0, 0),
        (0, 0, 8_000),
        (7_000, 0, 0),
    ]
    with database.write() as conn:
        assert jobs.finish_records(conn, job.id, [], 1) == set()
        jobs.retry_records(conn, job.id, [])
