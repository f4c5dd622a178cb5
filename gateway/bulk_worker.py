"""The workers that carry out bulk registration jobs.

Records are claimed from the store in small batches shared fairly between the jobs
that have work (gateway/store/jobs.py ``claim_records``); claiming counts an attempt and
leases the record, so a worker that dies mid-record gives it back when the lease runs
out. A claimed record is read from its job's source, its face extracted (the records in
flight are batched together by the extractor's micro-batcher), and then, in ONE
transaction, the record is marked processed and the subject, event and outbox row are
written. Only a record that is still new is marked (``new_record_seqs``), so however
often a record is claimed (lease expiry, a second gateway), it is registered exactly
once: the outcome and the registration commit together or not at all.

Store round trips were a third of a record's CPU, so they are batched: records are
claimed up to six times the worker count ahead, dozens at a time, and committed up to 64
per transaction, a few statements per job in it whatever the number of records (a
savepoint per job, so that one job's failure, e.g. its gallery deleted, undoes only
its part), with one matcher push per batch.

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

from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from facegate.errors import ErrorType, FacegateError
from facegate.metrics import JOB_RECORDS
from facegate.settings import JobsSettings
from gateway.bulk import BulkJobs
from gateway.deps import GatewayDeps, new_id
from gateway.enrolment import new_event, store_events
from gateway.faces import Face
from gateway.sources import ImageSource, SourceError, open_source
from gateway.store import events, galleries, jobs
from gateway.store.records import (
    Change,
    JobRecordRow,
    JobRow,
    NewEvent,
    RecordOutcome,
    RecordRetry,
)

log = logging.getLogger(__name__)

_TRANSIENT = (ErrorType.UNAVAILABLE, ErrorType.TIMEOUT, ErrorType.INTERNAL)
_IDLE_POLL_S = 0.5
_CLAIM_GATHER_S = 0.4
_IN_FLIGHT_PER_WORKER = 6
"""Records claimed and not yet committed, per worker."""
_CLAIM_PER_WORKER = 4
"""A claim waits (at most _CLAIM_GATHER_S) for this many free slots per worker."""
_COMMIT_BATCH = 64
_COMMIT_GATHER_S = 0.5
_COMMIT_POLL_S = 0.02
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
        self._slots = threading.Semaphore(_IN_FLIGHT_PER_WORKER * settings.workers)
        self._pool = ThreadPoolExecutor(settings.workers, thread_name_prefix="facegate-bulk")
        self._done: queue.Queue[_Done | None] = queue.Queue()
        self._committer: threading.Thread | None = None
        self._sources: OrderedDict[str, ImageSource] = OrderedDict()
        self._qualities: dict[str, float] = {}
        self._opening: dict[str, threading.Lock] = {}
        self._in_flight = 0
        """Records submitted to the pool and not yet handed to the committer."""
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
        claimed = 0
        while not self._stop.is_set():
            try:
                claimed = self._claim(busy=claimed > 0)
            except Exception:
                log.exception("claiming bulk records failed; retrying")
                claimed = 0
            if claimed == 0:
                self._work_arrived.wait(_IDLE_POLL_S)
                self._work_arrived.clear()

    def _claim(self, *, busy: bool) -> int:
        """Claim as many records as there are free slots (waiting for one first)."""
        if not busy:
            with self._deps.database.read() as conn:
                if not jobs.pending_job_ids(conn):
                    return 0  # idle: a read, so an idle worker never takes the write lock
        if not self._slots.acquire(timeout=_IDLE_POLL_S):
            return 1  # all busy: not idle, just full
        # Records are claimed well ahead of the workers, so the pool never waits on a
        # claim; a claim waits a moment for two thirds of the slots, so that claims come
        # in batches and their fixed cost (a transaction, a few statements, about 2 ms
        # of CPU) is shared by dozens of records.
        free = 1
        deadline = time.monotonic() + _CLAIM_GATHER_S
        while free < _CLAIM_PER_WORKER * self._settings.workers:
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
                    now_ms=self._deps.clock(),
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
            with self._lock:
                self._in_flight += 1
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
        with self._lock:
            self._in_flight -= 1

    # ---------------------------------------------------------------- processing

    def _process(self, job: JobRow, record: JobRecordRow) -> _Done:
        """Read and extract (the slow, parallel part); committing is batched."""
        try:
            image = self._source(job).read(record.filename)
            face = self._deps.extractor.enrolment_face(image, min_quality=self._quality(job))
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
            # Records finish one at a time; gathering them for a moment makes the
            # store's fixed cost per transaction (a few statements, a sync) a small
            # share of each record's. No wait once no record is in flight.
            deadline = time.monotonic() + _COMMIT_GATHER_S
            while len(batch) < _COMMIT_BATCH:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    more = self._done.get(timeout=min(left, _COMMIT_POLL_S))
                except queue.Empty:
                    if self._in_flight == 0:
                        break
                    continue
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
        """One transaction for the batch, a few statements per job in it; each record's
        outcome and registration commit together."""
        by_job: dict[str, list[_Done]] = {}
        for done in batch:
            by_job.setdefault(done.job.id, []).append(done)
        changes: list[Change] = []
        counts: Counter[str] = Counter()
        now_ms = self._deps.clock()
        with self._deps.database.write() as conn:
            for job_batch in by_job.values():
                job = job_batch[0].job
                failure: _Failure | None = None
                with conn.begin_nested() as savepoint:
                    try:
                        outcomes, retries, job_changes = self._register(
                            conn, job, job_batch, now_ms
                        )
                        # _register took the records (new_record_seqs): still theirs.
                        jobs.record_outcomes(conn, job.id, outcomes, now_ms)
                    except SQLAlchemyError:
                        raise  # the store's trouble: the whole batch is retried
                    except Exception as error:  # this job's (its gallery is gone...)
                        savepoint.rollback()
                        failure = self._job_failure(job, error)
                if failure is not None:
                    outcomes, retries = self._failures([(d, failure) for d in job_batch], now_ms)
                    finished = jobs.finish_records(conn, job.id, outcomes, now_ms)
                    outcomes = [o for o in outcomes if o.seq in finished]
                    job_changes = []
                jobs.retry_records(conn, job.id, retries)
                changes += job_changes
                for outcome in outcomes:
                    counts["success" if outcome.register_status == "Success" else "failed"] += 1
                counts["retried"] += len(retries)
                counts["duplicate"] += len(job_batch) - len(outcomes) - len(retries)
        self._deps.replicator.push(changes)
        for kind, count in counts.items():
            JOB_RECORDS.labels(kind).inc(count)

    def _register(
        self, conn: Connection, job: JobRow, batch: list[_Done], now_ms: int
    ) -> tuple[list[RecordOutcome], list[RecordRetry], list[Change]]:
        """Registers the faces of the job's records that are still new (another worker may
        have finished one after its lease ran out); their outcomes, the retries and the
        changes to push."""
        new = jobs.new_record_seqs(conn, job.id, [done.record.seq for done in batch])
        registering: list[tuple[_Done, NewEvent]] = []
        failed: list[tuple[_Done, _Failure]] = []
        for done in batch:
            if done.record.seq not in new:
                continue
            if done.face is None:
                assert done.failure is not None
                failed.append((done, done.failure))
                continue
            event = new_event(
                subject_id=new_id(), event_id=new_id(), mask=done.record.tag_mask, face=done.face
            )
            registering.append((done, event))
        added, changes = store_events(
            conn, job.gallery_id, [event for _, event in registering], now_ms=now_ms
        )
        stored = registering[: len(added.rows)]
        events.create_subjects(
            conn, job.gallery_id, [event.subject_id for _, event in stored], now_ms
        )
        full = _Failure(events.gallery_full(added.gallery_size).message, transient=False)
        failed += [(done, full) for done, _ in registering[len(stored) :]]
        outcomes, retries = self._failures(failed, now_ms)
        outcomes += [
            RecordOutcome(
                done.record.seq,
                "Success",
                subject_id=event.subject_id,
                event_id=event.event_id,
                attributes_json=event.attributes_json,
            )
            for done, event in stored
        ]
        return outcomes, retries, changes

    def _failures(
        self, failed: list[tuple[_Done, _Failure]], now_ms: int
    ) -> tuple[list[RecordOutcome], list[RecordRetry]]:
        """Final failures, and the records to put back with a back-off because their
        failure may pass (until they run out of attempts)."""
        settings = self._settings
        outcomes: list[RecordOutcome] = []
        retries: list[RecordRetry] = []
        for done, failure in failed:
            attempts = done.record.attempts
            if failure.transient and attempts < settings.max_attempts:
                delay_s = min(settings.retry_max_s, settings.retry_base_s * 2 ** (attempts - 1))
                retries.append(
                    RecordRetry(done.record.seq, now_ms + int(delay_s * 1000), failure.reason)
                )
                continue
            reason = failure.reason
            if failure.transient:
                reason += f" (gave up after {attempts} attempts)"
            outcomes.append(RecordOutcome(done.record.seq, "Failed", reason))
        return outcomes, retries

    def _job_failure(self, job: JobRow, error: Exception) -> _Failure:
        if isinstance(error, FacegateError):
            return _Failure(error.message, error.error_type in _TRANSIENT)
        log.exception("registering bulk records of job %s failed", job.id)
        return _Failure(f"internal error ({type(error).__name__})", transient=True)

    # ------------------------------------------------------------------- helpers

    def _source(self, job: JobRow) -> ImageSource:
        with self._lock:
            source = self._sources.get(job.id)
            if source is not None:
                self._sources.move_to_end(job.id)
                return source
            opening = self._opening.setdefault(job.id, threading.Lock())
        # One thread opens a job's source (creating an S3 client takes a second of CPU
        # time); the job's other workers wait for it rather than open their own.
        with opening:
            with self._lock:
                source = self._sources.get(job.id)
            if source is not None:
                return source
            try:
                opened = open_source(
                    self._bulk.source_config(job.source),
                    max_bytes=self._max_image_bytes,
                    max_connections=self._settings.workers,
                )
            except BaseException:
                with self._lock:
                    self._opening.pop(job.id, None)
                raise
            with self._lock:
                self._opening.pop(job.id, None)
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
