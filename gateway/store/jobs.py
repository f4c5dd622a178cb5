"""Bulk registration jobs (NEC's /v1.1/jobs) and the gallery sources they read files from.

A job holds one record per registration, in request order (``seq``). Workers claim new
records in batches with :func:`claim_records`, which leases them for a while so that a
crashed worker's records come back, then record each outcome with :func:`finish_records`
(exactly once) or put the record back for later with :func:`retry_records`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import Connection, Row, bindparam, exists, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from gateway.store.common import (
    chunks,
    from_stored_mask,
    gallery_not_found,
    lock_gallery,
    to_stored_mask,
)
from gateway.store.records import (
    BulkSource,
    JobRecordRow,
    JobRecordStatus,
    JobRow,
    RecordOutcome,
    RecordRetry,
    RegisterStatus,
)
from gateway.store.schema import bulk_sources, job_records, jobs

NEW = "N"
PROCESSED = "P"
_STATUS_NAMES: dict[str, JobRecordStatus] = {NEW: "New", PROCESSED: "Processed"}
_REGISTER_STATUSES: tuple[RegisterStatus, ...] = ("", "Success", "Failed")


def set_bulk_source(conn: Connection, source: BulkSource, now_ms: int) -> None:
    """Sets (or replaces) the gallery's bulk source; NOT_FOUND when the gallery does not
    exist. Jobs already created keep their own copy."""
    # The gallery lock orders this after a concurrent deletion of the gallery.
    if lock_gallery(conn, source.gallery_id) is None:
        raise gallery_not_found()
    values: dict[str, Any] = {**vars(source), "updated_ms": now_ms}
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(bulk_sources).values(values)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[bulk_sources.c.gallery_id],
            set_={name: statement.excluded[name] for name in values if name != "gallery_id"},
        )
    )


def bulk_source(conn: Connection, gallery_id: str) -> BulkSource | None:
    """The gallery's bulk source; None when none was set."""
    row = conn.execute(select(bulk_sources).where(bulk_sources.c.gallery_id == gallery_id)).first()
    if row is None:
        return None
    return BulkSource(
        gallery_id=row.gallery_id,
        uri=row.uri,
        endpoint_url=row.endpoint_url,
        region=row.region,
        access_key_id=row.access_key_id,
        secret_ciphertext=_optional_bytes(row.secret_ciphertext),
    )


def create_job(
    conn: Connection,
    *,
    id: str,
    gallery_id: str,
    application_id: str,
    source: BulkSource,
    records: Sequence[tuple[str, str, int]],
    now_ms: int,
) -> JobRow:
    """Adds a job with one new record per ``(record id, filename, tag mask)``, numbered in
    the given order; NOT_FOUND when the gallery does not exist. ``source`` is copied into
    the job (its ``gallery_id`` is ignored)."""
    # The gallery lock orders this after a concurrent deletion of the gallery.
    if lock_gallery(conn, gallery_id) is None:
        raise gallery_not_found()
    job = JobRow(
        id=id,
        gallery_id=gallery_id,
        application_id=application_id,
        source=BulkSource(
            gallery_id=gallery_id,
            uri=source.uri,
            endpoint_url=source.endpoint_url,
            region=source.region,
            access_key_id=source.access_key_id,
            secret_ciphertext=source.secret_ciphertext,
        ),
        record_count=len(records),
        created_ms=now_ms,
    )
    conn.execute(
        insert(jobs).values(
            id=id,
            gallery_id=gallery_id,
            application_id=application_id,
            source_uri=source.uri,
            source_endpoint_url=source.endpoint_url,
            source_region=source.region,
            source_access_key_id=source.access_key_id,
            source_secret_ciphertext=source.secret_ciphertext,
            record_count=len(records),
            created_ms=now_ms,
            last_claim_ms=0,
        )
    )
    rows = [
        {
            "job_id": id,
            "seq": seq,
            "id": record_id,
            "filename": filename,
            "tag_mask": to_stored_mask(tag_mask),
        }
        for seq, (record_id, filename, tag_mask) in enumerate(records)
    ]
    if rows:
        # executemany: about 4x faster than multi-row VALUES, which SQLAlchemy compiles
        # anew for every chunk (100,000 records: ~1.5 s on SQLite, ~3 s on PostgreSQL).
        conn.execute(insert(job_records), rows)
    return job


def get_job(conn: Connection, gallery_id: str, job_id: str) -> JobRow | None:
    """The gallery's job of that id; None also when the job is another gallery's."""
    row = conn.execute(
        select(jobs).where(jobs.c.id == job_id, jobs.c.gallery_id == gallery_id)
    ).first()
    return None if row is None else _job(row)


def job_page(conn: Connection, job_id: str, *, after_seq: int, limit: int) -> list[JobRecordRow]:
    """Up to ``limit`` records of the job after ``after_seq`` (-1 for the first page), in
    request order."""
    rows = conn.execute(
        select(job_records)
        .where(job_records.c.job_id == job_id, job_records.c.seq > after_seq)
        .order_by(job_records.c.seq)
        .limit(limit)
    )
    return [_record(row) for row in rows]


def job_counts(conn: Connection, job_id: str) -> tuple[int, int, int]:
    """The job's (new, succeeded, failed) record counts."""
    counts: dict[tuple[str, str], int] = {
        (status, register_status): count
        for status, register_status, count in conn.execute(
            select(job_records.c.status, job_records.c.register_status, func.count())
            .where(job_records.c.job_id == job_id)
            .group_by(job_records.c.status, job_records.c.register_status)
        )
    }
    new = sum(count for (status, _), count in counts.items() if status == NEW)
    return new, counts.get((PROCESSED, "Success"), 0), counts.get((PROCESSED, "Failed"), 0)


def claim_records(
    conn: Connection, *, now_ms: int, lease_ms: int, limit: int
) -> list[tuple[JobRow, JobRecordRow]]:
    """Leases up to ``limit`` claimable records until ``now_ms + lease_ms`` and counts an
    attempt for each (so that a worker dying mid-record still counts); returns them as
    updated, by job, in request order within a job.

    A record is claimable when it is new and both its back-off and any previous lease are
    over. The batch is shared between the jobs that have claimable records, least recently
    served first, an equal share each, what a job cannot use going to the others: a large
    job does not hold up a small one started after it. Concurrent claimers never get the
    same record (PostgreSQL: rows locked by another claimer are skipped; SQLite: write
    transactions run one at a time).
    """
    if lease_ms <= 0 or limit <= 0:
        raise ValueError(f"lease_ms ({lease_ms}) and limit ({limit}) must be positive")
    candidates = [
        _job(row)
        for row in conn.execute(
            select(jobs)
            .where(exists().where(job_records.c.job_id == jobs.c.id, *_claimable(now_ms)))
            .order_by(jobs.c.last_claim_ms, jobs.c.created_ms, jobs.c.id)
            .limit(limit)
        )
    ]
    if not candidates:
        return []
    share, extra = divmod(limit, len(candidates))
    shares = [share + (1 if index < extra else 0) for index in range(len(candidates))]
    claimed = [
        _claim(conn, job.id, count, now_ms, lease_ms)
        for job, count in zip(candidates, shares, strict=True)
    ]
    left = limit - sum(len(records) for records in claimed)
    for job, count, records in zip(candidates, shares, claimed, strict=True):
        # Only a job that filled its share may have more.
        if left > 0 and len(records) == count:
            more = _claim(conn, job.id, left, now_ms, lease_ms)
            records.extend(more)
            left -= len(more)
    served = [(job, records) for job, records in zip(candidates, claimed, strict=True) if records]
    # One row at a time in id order: concurrent claimers lock the jobs in the same order.
    for job_id in sorted(job.id for job, _ in served):
        conn.execute(update(jobs).where(jobs.c.id == job_id).values(last_claim_ms=now_ms))
    return [(job, record) for job, records in served for record in records]


def new_record_seqs(conn: Connection, job_id: str, seqs: Collection[int]) -> set[int]:
    """Those of the job's records ``seqs`` that are still new, locked until the
    transaction ends (PostgreSQL; on SQLite the write transaction excludes other
    writers): what the caller does for them cannot race another worker finishing them."""
    found: set[int] = set()
    for batch in chunks(seqs):
        found.update(
            conn.execute(
                select(job_records.c.seq)
                .where(
                    job_records.c.job_id == job_id,
                    job_records.c.seq.in_(batch),
                    job_records.c.status == NEW,
                )
                .with_for_update()
            ).scalars()
        )
    return found


def finish_records(
    conn: Connection, job_id: str, outcomes: Sequence[RecordOutcome], now_ms: int
) -> set[int]:
    """Records the outcomes of those records that are still new and marks them processed
    at ``now_ms``; returns their seqs. The others were processed by another worker: the
    caller must roll back what it did for them."""
    for outcome in outcomes:
        if outcome.register_status not in ("Success", "Failed"):
            raise ValueError(
                f"register status {outcome.register_status!r} is not Success or Failed"
            )
    finished = new_record_seqs(conn, job_id, [outcome.seq for outcome in outcomes])
    record_outcomes(conn, job_id, [o for o in outcomes if o.seq in finished], now_ms)
    return finished


def record_outcomes(
    conn: Connection, job_id: str, outcomes: Sequence[RecordOutcome], now_ms: int
) -> None:
    """:func:`finish_records` for records the caller has taken with
    :func:`new_record_seqs` in this transaction (so they are new, and stay so)."""
    if not outcomes:
        return
    conn.execute(
        update(job_records)
        .where(*_bound_record(), job_records.c.status == NEW)
        .values(
            status=PROCESSED,
            register_status=bindparam("b_register_status"),
            reason=bindparam("b_reason"),
            subject_id=bindparam("b_subject_id"),
            event_id=bindparam("b_event_id"),
            attributes_json=bindparam("b_attributes_json"),
            lease_until_ms=0,
            processed_ms=now_ms,
        ),
        [
            {
                "b_job_id": job_id,
                "b_seq": outcome.seq,
                "b_register_status": outcome.register_status,
                "b_reason": outcome.reason,
                "b_subject_id": outcome.subject_id,
                "b_event_id": outcome.event_id,
                "b_attributes_json": outcome.attributes_json,
            }
            for outcome in outcomes
        ],
    )


def retry_records(conn: Connection, job_id: str, retries: Sequence[RecordRetry]) -> None:
    """Puts new records back after a transient failure: their leases end now and each may
    be claimed again from its ``next_attempt_ms``; its ``reason`` shows meanwhile. A
    processed record stays as it is."""
    if not retries:
        return
    conn.execute(
        update(job_records)
        .where(*_bound_record(), job_records.c.status == NEW)
        .values(
            lease_until_ms=0,
            next_attempt_ms=bindparam("b_next_attempt_ms"),
            reason=bindparam("b_reason"),
        ),
        [
            {
                "b_job_id": job_id,
                "b_seq": retry.seq,
                "b_next_attempt_ms": retry.next_attempt_ms,
                "b_reason": retry.reason,
            }
            for retry in retries
        ],
    )


def pending_job_ids(conn: Connection) -> list[str]:
    """The jobs that still have new records, oldest first."""
    return list(
        conn.execute(
            select(jobs.c.id)
            .where(exists().where(job_records.c.job_id == jobs.c.id, job_records.c.status == NEW))
            .order_by(jobs.c.created_ms, jobs.c.id)
        ).scalars()
    )


def _claim(
    conn: Connection, job_id: str, count: int, now_ms: int, lease_ms: int
) -> list[JobRecordRow]:
    """Leases the job's first ``count`` claimable records that no one else is claiming."""
    if count == 0:
        return []
    chosen = (
        select(job_records.c.seq)
        .where(job_records.c.job_id == job_id, *_claimable(now_ms))
        .order_by(job_records.c.seq)
        .limit(count)
        .with_for_update(skip_locked=True)
    )
    rows = conn.execute(
        update(job_records)
        .where(job_records.c.job_id == job_id, job_records.c.seq.in_(chosen.scalar_subquery()))
        .values(attempts=job_records.c.attempts + 1, lease_until_ms=now_ms + lease_ms)
        .returning(*job_records.c)
    )
    return sorted((_record(row) for row in rows), key=lambda record: record.seq)


def _claimable(now_ms: int) -> tuple[Any, Any, Any]:
    return (
        job_records.c.status == NEW,
        job_records.c.next_attempt_ms <= now_ms,
        job_records.c.lease_until_ms <= now_ms,
    )


def _bound_record() -> tuple[Any, Any]:
    """The record of an executemany row's ``b_job_id`` and ``b_seq``."""
    return job_records.c.job_id == bindparam("b_job_id"), job_records.c.seq == bindparam("b_seq")


def _optional_bytes(value: bytes | None) -> bytes | None:
    # PostgreSQL returns BYTEA as memoryview.
    return None if value is None else bytes(value)


def _job(row: Row[Any]) -> JobRow:
    return JobRow(
        id=row.id,
        gallery_id=row.gallery_id,
        application_id=row.application_id,
        source=BulkSource(
            gallery_id=row.gallery_id,
            uri=row.source_uri,
            endpoint_url=row.source_endpoint_url,
            region=row.source_region,
            access_key_id=row.source_access_key_id,
            secret_ciphertext=_optional_bytes(row.source_secret_ciphertext),
        ),
        record_count=row.record_count,
        created_ms=row.created_ms,
    )


def _record(row: Row[Any]) -> JobRecordRow:
    status = _STATUS_NAMES.get(row.status)
    register_status = row.register_status
    if status is None or register_status not in _REGISTER_STATUSES:
        raise ValueError(
            f"job record {row.job_id}/{row.seq} has status {row.status!r}/{register_status!r}"
        )
    return JobRecordRow(
        job_id=row.job_id,
        seq=row.seq,
        id=row.id,
        filename=row.filename,
        tag_mask=from_stored_mask(row.tag_mask),
        attempts=row.attempts,
        status=status,
        register_status=register_status,
        reason=row.reason,
        subject_id=row.subject_id,
        event_id=row.event_id,
        attributes_json=row.attributes_json,
        next_attempt_ms=row.next_attempt_ms,
        lease_until_ms=row.lease_until_ms,
        processed_ms=row.processed_ms,
    )
