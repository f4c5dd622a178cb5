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

Store round trips were a third of a record's CPU, so they are batched: records are
claimed up to twice the worker count ahead, several at a time, and committed up to 64
per transaction (a savepoint per record, so one record's failure undoes only itself),
with one matcher push per batch.

Failures that may pass (a source or the extractor unreachable, a timeout) are retried
with exponential backoff up to ``max_attempts``; the others (no face, poor quality, not
an image, file not found, gallery full) are final at once, with the reason recorded.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter, OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from google.protobuf import json_format
from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

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
from gateway.store.records import Change, JobRecordRow, JobRow

log = logging.getLogger(__name__)

_TRANSIENT = (ErrorType.UNAVAILABLE, ErrorType.TIMEOUT, ErrorType.INTERNAL)
_IDLE_POLL_S = 0.5
_CLAIM_GATHER_S = 0.05
_COMMIT_BATCH = 64
_OPEN_SOURCES = 16


@dataclass(frozen=True)
class _Failure:
    reason: str
    transient: bool


@dataclass(frozen=True)
class _Done:
    """A record read and extracted (``face``) or failed (``failure``), to commit."""

    job: JobRow
    record: JobRecordRow
    face: Face | None
    failure: _Failure | None


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
        self._slots = threading.Semaphore(2 * settings.workers)
        self._pool = ThreadPoolExecutor(settings.workers, thread_name_prefix="facegate-bulk")
        self._done: queue.Queue[_Done | None] = queue.Queue()
        self._committer: threading.Thread | None = None
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
        self._committer = threading.Thread(
            target=self._commit_loop, name="facegate-bulk-commits", daemon=True
        )
        self._committer.start()

    def stop(self) -> None:
        """Stop claiming, let the records in flight finish, close the sources."""
        self._stop.set()
        self._work_arrived.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._pool.shutdown(wait=True)
        if self._committer is not None:
            self._done.put(None)
            self._committer.join()
            self._committer = None
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
        # Up to twice the workers are claimed, so the pool never waits on a claim; a
        # claim waits briefly for half of the slots, so claims come in batches.
        free = 1
        deadline = time.monotonic() + _CLAIM_GATHER_S
        while free < self._settings.workers:
            left = deadline - time.monotonic()
            if left <= 0 or not self._slots.acquire(timeout=left):
                break
            free += 1
        while self._slots.acquire(blocking=False):
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
            if record.attempts > self._settings.max_attempts:
                # Claimed again and again without an outcome (a crash while handling it,
                # a commit that keeps failing): give up rather than loop.
                reason = f"gave up after {record.attempts - 1} attempts"
                self._slots.release()
                self._done.put(_Done(job, record, None, _Failure(reason, False)))
                continue
            self._pool.submit(self._process_in_slot, job, record)
        return len(claimed)

    def _process_in_slot(self, job: JobRow, record: JobRecordRow) -> None:
        try:
            done = self._process(job, record)
        except Exception as error:
            log.exception("bulk record %s of job %s failed unexpectedly", record.id, job.id)
            failure = _Failure(f"internal error ({type(error).__name__})", transient=True)
            done = _Done(job, record, None, failure)  # retried, then given up
        finally:
            self._slots.release()
        self._done.put(done)

    # ---------------------------------------------------------------- processing

    def _process(self, job: JobRow, record: JobRecordRow) -> _Done:
        """Read and extract (the slow, parallel part); committing is batched."""
        try:
            image = self._source(job).read(record.filename)
            face = self._deps.extractor.single_face(image, min_quality=self._quality(job))
        except SourceError as error:
            return _Done(job, record, None, _Failure(error.reason, error.transient))
        except FacegateError as error:
            failure = _Failure(error.message, error.error_type in _TRANSIENT)
            return _Done(job, record, None, failure)
        return _Done(job, record, face, None)

    def _commit_loop(self) -> None:
        while True:
            first = self._done.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < _COMMIT_BATCH:
                try:
                    more = self._done.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._done.put(None)  # seen after this batch
                    break
                batch.append(more)
            try:
                self._commit(batch)
            except Exception:
                # Nothing committed: the records' leases run out and they are retried.
                log.exception("committing %d bulk records failed", len(batch))

    def _commit(self, batch: list[_Done]) -> None:
        """One transaction for the batch; each record's outcome and registration commit
        together (a savepoint per record keeps one record's failure from undoing the
        others)."""
        changes: list[Change] = []
        counts: Counter[str] = Counter()
        with self._deps.database.write() as conn:
            for done in batch:
                with conn.begin_nested() as savepoint:
                    try:
                        outcome, change = self._record(conn, done)
                    except FacegateError as error:  # e.g. the gallery is full
                        savepoint.rollback()
                        outcome = self._record_failure(conn, done, _Failure(error.message, False))
                        change = None
                    except SQLAlchemyError:
                        raise  # the store's trouble: the whole batch is retried
                    except Exception as error:  # this record's: the others go on
                        log.exception("registering bulk record %s failed", done.record.id)
                        savepoint.rollback()
                        failure = _Failure(f"internal error ({type(error).__name__})", True)
                        outcome = self._record_failure(conn, done, failure)
                        change = None
                if change is not None:
                    changes.append(change)
                counts[outcome] += 1
        self._deps.replicator.push(changes)
        for outcome, count in counts.items():
            JOB_RECORDS.labels(outcome).inc(count)

    def _record(self, conn: Connection, done: _Done) -> tuple[str, Change | None]:
        if done.face is None:
            assert done.failure is not None
            return self._record_failure(conn, done, done.failure), None
        job, record, face = done.job, done.record, done.face
        subject_id, event_id = new_id(), new_id()
        if not jobs.finish_record(
            conn,
            job.id,
            record.seq,
            register_status="Success",
            reason="",
            subject_id=subject_id,
            event_id=event_id,
            attributes_json=json_format.MessageToJson(face.attributes, indent=None),
            now_ms=now_ms(),
        ):
            return "duplicate", None  # processed meanwhile (a lease that ran out)
        events.create_subject(conn, job.gallery_id, subject_id, now_ms())
        change = store_event(
            conn,
            job.gallery_id,
            subject_id=subject_id,
            event_id=event_id,
            mask=record.tag_mask,
            face=face,
        )
        return "success", change

    def _record_failure(self, conn: Connection, done: _Done, failure: _Failure) -> str:
        settings = self._settings
        job, record = done.job, done.record
        if failure.transient and record.attempts < settings.max_attempts:
            delay_s = min(settings.retry_max_s, settings.retry_base_s * 2 ** (record.attempts - 1))
            jobs.retry_record(
                conn,
                job.id,
                record.seq,
                next_attempt_ms=now_ms() + int(delay_s * 1000),
                reason=failure.reason,
            )
            return "retried"
        reason = failure.reason
        if failure.transient:
            reason += f" (gave up after {record.attempts} attempts)"
        finished = jobs.finish_record(
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
        return "failed" if finished else "duplicate"

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
