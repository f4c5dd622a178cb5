"""`facegate bulk register`: submit a folder or an S3 prefix as bulk jobs through the
public gRPC API and follow them to the end.

The client sets the gallery's bulk source (Jobs.SetBulkSource), lists the image files
there itself, submits them in jobs of at most the server's limit, and polls the progress
pages. A page whose records are all processed never changes again, so it is fetched
once; polling costs one or two pages however large the job.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TextIO

import grpc

from facegate.contract import API_KEY_METADATA
from facegate.errors import FacegateError
from facegate.v1 import jobs_pb2, jobs_pb2_grpc
from gateway.sources import SourceConfig, open_source

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif")
POLL_INTERVAL_S = 0.5
_BAR_WIDTH = 30


@dataclass
class Summary:
    submitted: int = 0
    succeeded: int = 0
    failed_by_reason: Counter[str] = field(default_factory=Counter)
    batch_ids: list[str] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return sum(self.failed_by_reason.values())

    def as_json(self) -> dict[str, object]:
        return {
            "batchIds": self.batch_ids,
            "submitted": self.submitted,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "failedByReason": dict(self.failed_by_reason.most_common()),
        }


def image_files(config: SourceConfig) -> list[str]:
    """The source's image files (by suffix), sorted."""
    source = open_source(config, max_bytes=1)
    try:
        return [name for name in source.list() if name.lower().endswith(IMAGE_SUFFIXES)]
    finally:
        source.close()


class _Job:
    """One submitted job and what is known of its pages."""

    def __init__(self, batch_id: str, size: int) -> None:
        self.batch_id = batch_id
        self.size = size
        self.done: list[jobs_pb2.JobRecord] = []  # records of the fully processed pages
        self.next_key = ""  # paging id of the first page not known to be done

    @property
    def finished(self) -> bool:
        return len(self.done) == self.size


class BulkClient:
    def __init__(self, channel: grpc.Channel, api_key: str, *, timeout_s: float = 60.0) -> None:
        self._stub = jobs_pb2_grpc.JobsStub(channel)
        self._metadata = ((API_KEY_METADATA, api_key),)
        self._timeout_s = timeout_s

    def _call(self, rpc: str, request: object) -> object:
        try:
            return getattr(self._stub, rpc)(
                request, metadata=self._metadata, timeout=self._timeout_s
            )
        except grpc.RpcError as error:
            raise FacegateError.from_rpc_error(error) from None

    def set_source(self, config: SourceConfig) -> None:
        self._call(
            "SetBulkSource",
            jobs_pb2.JobsSetBulkSourceRequest(
                uri=config.uri,
                endpoint_url=config.endpoint_url,
                region=config.region,
                access_key_id=config.access_key_id,
                secret_access_key=config.secret_access_key,
            ),
        )

    def submit(self, filenames: Sequence[str], tags: Sequence[str], chunk: int) -> list[_Job]:
        submitted = []
        for start in range(0, len(filenames), chunk):
            part = filenames[start : start + chunk]
            request = jobs_pb2.JobsBulkRegisterRequest(
                registrations=[jobs_pb2.BulkRegistration(filename=f, tags=tags) for f in part]
            )
            response = self._call("BulkRegister", request)
            assert isinstance(response, jobs_pb2.JobsBulkRegisterResponse)
            submitted.append(_Job(response.batch_id, len(part)))
        return submitted

    def poll(self, job: _Job) -> int:
        """Refresh the job's progress; the number of records processed so far."""
        key = job.next_key
        processed_tail = 0
        while True:
            request = jobs_pb2.JobsGetBulkRegisterProgressRequest(
                batch_id=job.batch_id, paging_id=key
            )
            page = self._call("GetBulkRegisterProgress", request)
            assert isinstance(page, jobs_pb2.JobsGetBulkRegisterProgressResponse)
            done = all(r.status == jobs_pb2.JOB_RECORD_STATUS_PROCESSED for r in page.processed)
            if done and key == job.next_key:
                job.done.extend(page.processed)
                job.next_key = page.last_evaluated_key
            else:
                processed_tail += sum(
                    r.status == jobs_pb2.JOB_RECORD_STATUS_PROCESSED for r in page.processed
                )
            if not page.last_evaluated_key or job.finished:
                return len(job.done) + processed_tail
            key = page.last_evaluated_key


def run_bulk_register(
    client: BulkClient,
    config: SourceConfig,
    *,
    tags: Sequence[str],
    chunk: int,
    out: TextIO = sys.stderr,
    clock: Callable[[], float] = time.monotonic,
) -> Summary:
    """Set the source, submit every image file in it, show progress until all are done."""
    filenames = image_files(config)
    summary = Summary(submitted=len(filenames))
    if not filenames:
        return summary
    client.set_source(config)
    submitted = client.submit(filenames, tags, chunk)
    summary.batch_ids = [job.batch_id for job in submitted]
    started = clock()
    while True:
        processed = sum(client.poll(job) for job in submitted)
        _draw(out, processed, len(filenames), clock() - started)
        if all(job.finished for job in submitted):
            break
        time.sleep(POLL_INTERVAL_S)
    out.write("\n")
    for job in submitted:
        for record in job.done:
            if record.register_status == jobs_pb2.REGISTER_STATUS_SUCCESS:
                summary.succeeded += 1
            else:
                summary.failed_by_reason[record.reason or "unknown"] += 1
    return summary


def _draw(out: TextIO, done: int, total: int, elapsed_s: float) -> None:
    filled = _BAR_WIDTH * done // total
    rate = done / elapsed_s if elapsed_s > 0 else 0.0
    eta = f", {(total - done) / rate:.0f} s left" if rate > 0 and done < total else ""
    out.write(f"\r[{'#' * filled}{'-' * (_BAR_WIDTH - filled)}] {done}/{total} ({rate:.1f}/s{eta})")
    out.flush()
