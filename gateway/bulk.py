"""Bulk registration jobs: submitting one, paging through its progress, and choosing
where a gallery's jobs read their files (the work itself: gateway/bulk_worker.py).

A job is all in the store: the job row (with a copy of the gallery's source, so a
running job keeps reading where it started) and one row per registration, in
submission order. Progress pages hold 1000 records; ``lastEvaluatedKey`` is the
sequence number of a page's last record, opaque to clients.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from facegate.errors import ErrorType, FacegateError
from facegate.metrics import JOBS_SUBMITTED
from facegate.settings import JobsSettings
from gateway.deps import GatewayDeps, new_id
from gateway.sources import SourceConfig, check_config, check_filename
from gateway.store import jobs, tags
from gateway.store.records import Application, BulkSource, JobRecordRow

PAGE_SIZE = 1000


@dataclass(frozen=True)
class Registration:
    filename: str
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProgressPage:
    batch_id: str
    records: list[JobRecordRow]
    last_evaluated_key: str


def refused(message: str) -> FacegateError:
    return FacegateError(ErrorType.INVALID_REQUEST, message)


class BulkJobs:
    def __init__(
        self,
        deps: GatewayDeps,
        settings: JobsSettings,
        *,
        local_root: Path,
        work_arrived: threading.Event | None = None,
    ) -> None:
        self._deps = deps
        self._settings = settings
        self._local_root = local_root
        self._max_registrations = settings.max_registrations
        self._work_arrived = work_arrived

    def check_policy(self, gallery_id: str, config: SourceConfig) -> None:
        """What this deployment lets a gallery's jobs read: its own bulk folder and the
        operator's listed folders; S3 on AWS or listed endpoints, with the source's own
        keys unless the operator allows the process's."""
        settings = self._settings
        if config.uri.startswith("file://"):
            folder = Path(urlsplit(config.uri).path).resolve()
            own = (self._local_root / gallery_id).resolve()
            allowed = [own, *(Path(root).resolve() for root in settings.local_roots)]
            if not any(folder == root or folder.is_relative_to(root) for root in allowed):
                raise refused(
                    f"{config.uri} is not a folder this deployment lets jobs read: the "
                    f"gallery's own {own.as_uri()} or one of FACEGATE_JOBS_LOCAL_ROOTS."
                )
            return
        endpoint = config.endpoint_url.rstrip("/")
        endpoints = {e.rstrip("/") for e in settings.s3_endpoints}
        if endpoint and "*" not in endpoints and endpoint not in endpoints:
            raise refused(
                f"S3 endpoint {config.endpoint_url} is not one this deployment allows "
                "(FACEGATE_JOBS_S3_ENDPOINTS)."
            )
        if not config.access_key_id and not settings.s3_ambient_credentials:
            raise refused("An S3 source needs its own accessKeyId and secretAccessKey.")

    def set_source(self, application: Application, config: SourceConfig) -> None:
        config = check_config(config)
        gallery_id = application.gallery_id
        self.check_policy(gallery_id, config)
        sealed = (
            self._deps.secrets.seal(config.secret_access_key, access_key_id=gallery_id)
            if config.secret_access_key
            else None
        )
        source = BulkSource(
            gallery_id=gallery_id,
            uri=config.uri,
            endpoint_url=config.endpoint_url,
            region=config.region,
            access_key_id=config.access_key_id,
            secret_ciphertext=sealed,
        )
        with self._deps.database.write() as conn:
            jobs.set_bulk_source(conn, source, self._deps.clock())

    def wake(self) -> None:
        """Tell the workers new records wait (instead of their next poll)."""
        if self._work_arrived is not None:
            self._work_arrived.set()

    def source_config(self, source: BulkSource) -> SourceConfig:
        """A stored source with its secret opened (workers read through it)."""
        secret = (
            self._deps.secrets.open(source.secret_ciphertext, access_key_id=source.gallery_id)
            if source.secret_ciphertext
            else ""
        )
        return SourceConfig(
            uri=source.uri,
            endpoint_url=source.endpoint_url,
            region=source.region,
            access_key_id=source.access_key_id,
            secret_access_key=secret,
        )

    def submit(self, application: Application, registrations: Sequence[Registration]) -> str:
        """A new job registering one subject per registration; its batch id."""
        if not registrations:
            raise FacegateError(ErrorType.INVALID_REQUEST, "registrations must not be empty.")
        if len(registrations) > self._max_registrations:
            raise FacegateError(
                ErrorType.INVALID_REQUEST,
                f"A job holds at most {self._max_registrations} registrations, "
                f"not {len(registrations)}.",
            )
        for registration in registrations:
            check_filename(registration.filename)
        gallery_id = application.gallery_id
        batch_id = new_id()
        with self._deps.database.write() as conn:
            masks: dict[tuple[str, ...], int] = {}
            for registration in registrations:
                if registration.tags not in masks:
                    masks[registration.tags] = tags.tag_mask(conn, gallery_id, registration.tags)
            source = jobs.bulk_source(conn, gallery_id) or self._default_source(gallery_id)
            # Again at submission: the operator may have narrowed the policy since.
            self.check_policy(gallery_id, self.source_config(source))
            jobs.create_job(
                conn,
                id=batch_id,
                gallery_id=gallery_id,
                application_id=application.id,
                source=source,
                records=[(new_id(), r.filename, masks[r.tags]) for r in registrations],
                now_ms=self._deps.clock(),
            )
        JOBS_SUBMITTED.inc()
        self.wake()
        return batch_id

    def progress(self, application: Application, batch_id: str, paging_id: str) -> ProgressPage:
        after_seq = -1
        if paging_id:
            try:
                after_seq = int(paging_id)
            except ValueError:
                after_seq = -2
            if after_seq < 0:
                raise FacegateError(
                    ErrorType.INVALID_REQUEST, f"pagingId {paging_id} is not valid."
                )
        with self._deps.database.read() as conn:
            job = jobs.get_job(conn, application.gallery_id, batch_id) if batch_id else None
            if job is None:
                raise FacegateError(ErrorType.NOT_FOUND, f"Batch {batch_id} not found.")
            if after_seq >= job.record_count:
                raise FacegateError(
                    ErrorType.INVALID_REQUEST, f"pagingId {paging_id} is not valid."
                )
            rows = jobs.job_page(conn, batch_id, after_seq=after_seq, limit=PAGE_SIZE)
        more = bool(rows) and rows[-1].seq < job.record_count - 1
        return ProgressPage(batch_id, rows, str(rows[-1].seq) if more else "")

    def _default_source(self, gallery_id: str) -> BulkSource:
        folder = (self._local_root / gallery_id).resolve()
        return BulkSource(
            gallery_id=gallery_id,
            uri=folder.as_uri(),
            endpoint_url="",
            region="",
            access_key_id="",
            secret_ciphertext=None,
        )
