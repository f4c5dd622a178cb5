"""The workers that carry out bulk registration jobs.

Records are claimed from the store in small batches shared fairly between the jobs
that have work (gateway/store/jobs.py ``claim_records``); claiming counts an attempt and
leases the record, so a worker that dies mid-record gives it back when the lease runs
out. A claimed record is read from its job's source, its face extracted (the records in
flight are batched together by the extractor's micro-batcher), and then, in ONE
transaction, the record is marked processed and the subject, event and outbox row are
written. ``finish_record`` only succeeds on a record that is still new, so however
often a record is claimed (lease expiry, a second gateway), it is registered exactly
once: the outcome and the registration commit together or not at all.

Failures that may pass (a source or the extractor unreachable, a timeout) are retried
with exponential backoff up to ``max_attempts``; the others (no face, poor quality, not
an image, file not found, gallery full) are final at once, with the reason recorded.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from google.protobuf import json_format

from facegate.errors import ErrorType, FacegateError
from facegate.metrics import JOB_RECORDS
from facegate.settings import JobsSettings
from gateway.backends import Face
from gateway.bulk import BulkJobs
from gateway.deps import GatewayDeps, new_id
from gateway.enrolment import store_event
from gateway.replication import now_ms
from gateway.sources import ImageSource, SourceError, open_source
from gateway.store import events, galleries, jobs
from gateway.store.records import JobRecordRow, JobRow

log = logging.getLogger(__name__)

_TRANSIENT = (ErrorType.UNAVAILABLE, ErrorType.TIMEOUT, ErrorType.INTERNAL)
_IDLE_POLL_S = 0.5
_OPEN_SOURCES = 16


@dataclass(frozen=True)
class _Failure:
    reason: str
    transient: bool


class BulkWorker:
    """Claims and processes job records on a pool of threads until stopped."""

    def __init__(
        self,
        deps: GatewayDeps,
        bulk: BulkJobs,
        settings: JobsSettings,
        *,
        max_image_bytes: int,
        work_arrived: threading.Event,
    ) -> None:
        self._deps = deps
        self._bulk = bulk
        self._settings = settings
        self._max_image_bytes = max_image_bytes
        self._work_arrived = work_arrived
        self._slots = threading.Semaphore(settings.workers)
        self._pool = ThreadPoolExecutor(settings.workers, thread_name_prefix="facegate-bulk")
        self._sources: OrderedDict[str, ImageSource] = OrderedDict()
        self._qualities: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the bulk worker is already running")
        self._thread = threading.Thread(target=self._run, name="facegate-bulk-claims", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop claiming, let the records in flight finish, close the sources."""
        self._stop.set()
        self._work_arrived.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._pool.shutdown(wait=True)
        with self._lock:
            for source in self._sources.values():
                source.close()
            self._sources.clear()

    # ------------------------------------------------------------------ claiming

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                claimed = self._claim()
            except Exception:
                log.exception("claiming bulk records failed; retrying")
                claimed = 0
            if claimed == 0:
                self._work_arrived.wait(_IDLE_POLL_S)
                self._work_arrived.clear()

    def _claim(self) -> int:
        """Claim as many records as there are free slots (waiting for one first)."""
        with self._deps.database.read() as conn:
            if not jobs.pending_job_ids(conn):
                return 0  # idle: a read, so an idle worker never takes the write lock
        if not self._slots.acquire(timeout=_IDLE_POLL_S):
            return 1  # all busy: not idle, just full
        free = 1
        while free < self._settings.workers and self._slots.acquire(blocking=False):
            free += 1
        try:
            with self._deps.database.write() as conn:
                claimed = jobs.claim_records(
                    conn,
                    now_ms=now_ms(),
                    lease_ms=int(self._settings.lease_s * 1000),
                    limit=free,
                )
        except BaseException:
            for _ in range(free):
                self._slots.release()
            raise
        for _ in range(free - len(claimed)):
            self._slots.release()
        for job, record in claimed:
            self._pool.submit(self._process_in_slot, job, record)
        return len(claimed)

    def _process_in_slot(self, job: JobRow, record: JobRecordRow) -> None:
        try:
            self._process(job, record)
        except Exception:
            log.exception("bulk record %s of job %s failed unexpectedly", record.id, job.id)
        finally:
            self._slots.release()

    # ---------------------------------------------------------------- processing

    def _process(self, job: JobRow, record: JobRecordRow) -> None:
        try:
            image = self._source(job).read(record.filename)
            face = self._deps.extractor.single_face(image, min_quality=self._quality(job))
            self._register(job, record, face)
        except SourceError as error:
            self._failed(job, record, _Failure(error.reason, error.transient))
        except FacegateError as error:
            self._failed(job, record, _Failure(error.message, error.error_type in _TRANSIENT))

    def _register(self, job: JobRow, record: JobRecordRow, face: Face) -> None:
        subject_id, event_id = new_id(), new_id()
        attributes = json_format.MessageToJson(face.attributes, indent=None)
        with self._deps.database.write() as conn:
            if not jobs.finish_record(
                conn,
                job.id,
                record.seq,
                register_status="Success",
                reason="",
                subject_id=subject_id,
                event_id=event_id,
                attributes_json=attributes,
                now_ms=now_ms(),
            ):
                return  # processed meanwhile (a lease that ran out): nothing to do
            events.create_subject(conn, job.gallery_id, subject_id, now_ms())
            change = store_event(
                conn,
                job.gallery_id,
                subject_id=subject_id,
                event_id=event_id,
                mask=record.tag_mask,
                face=face,
            )
        self._deps.replicator.push([change])
        JOB_RECORDS.labels("success").inc()

    def _failed(self, job: JobRow, record: JobRecordRow, failure: _Failure) -> None:
        settings = self._settings
        with self._deps.database.write() as conn:
            if failure.transient and record.attempts < settings.max_attempts:
                delay_s = min(
                    settings.retry_max_s, settings.retry_base_s * 2 ** (record.attempts - 1)
                )
                jobs.retry_record(
                    conn,
                    job.id,
                    record.seq,
                    next_attempt_ms=now_ms() + int(delay_s * 1000),
                    reason=failure.reason,
                )
                JOB_RECORDS.labels("retried").inc()
                return
            reason = failure.reason
            if failure.transient:
                reason += f" (gave up after {record.attempts} attempts)"
            jobs.finish_record(
                conn,
                job.id,
                record.seq,
                register_status="Failed",
                reason=reason,
                subject_id="",
                event_id="",
                attributes_json="",
                now_ms=now_ms(),
            )
        JOB_RECORDS.labels("failed").inc()

    # ------------------------------------------------------------------- helpers

    def _source(self, job: JobRow) -> ImageSource:
        with self._lock:
            source = self._sources.get(job.id)
            if source is not None:
                self._sources.move_to_end(job.id)
                return source
        opened = open_source(
            self._bulk.source_config(job.source),
            max_bytes=self._max_image_bytes,
            max_connections=self._settings.workers,
        )
        with self._lock:
            raced = self._sources.get(job.id)
            if raced is not None:  # another thread opened it meanwhile
                opened.close()
                return raced
            self._sources[job.id] = opened
            while len(self._sources) > _OPEN_SOURCES:
                self._sources.popitem(last=False)[1].close()
        return opened

    def _quality(self, job: JobRow) -> float:
        """The minimum quality of the application that submitted the job (its gallery's
        if the application is gone)."""
        with self._lock:
            cached = self._qualities.get(job.id)
        if cached is not None:
            return cached
        with self._deps.database.read() as conn:
            gallery = galleries.gallery_by_id(conn, job.gallery_id)
            if gallery is None:
                raise FacegateError(ErrorType.NOT_FOUND, f"Gallery {job.gallery_id} not found.")
            application = galleries.get_application(conn, gallery.tenant_id, job.application_id)
        quality = (application or gallery).face_minimum_quality_score
        with self._lock:
            self._qualities[job.id] = quality
        return quality
