"""Bulk worker rules: each record is registered once with its outcome, final failures
are recorded at once, passing ones retried after their back-off, and a full gallery
fails the records it has no room for."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from facegate.settings import JobsSettings
from gateway.bulk import BulkJobs, Registration
from gateway.bulk_worker import BulkWorker
from gateway.enrolment import Enrolment
from gateway.store.records import Application, JobRecordRow
from tests.unit.gateway.domain.conftest import Domain

RETRY_S = 60.0
"""Longer than any test: a retried record waits until the test moves the clock."""


@dataclass
class Jobs:
    bulk: BulkJobs
    folder: Path
    application: Application

    def submit(self, *filenames: str) -> str:
        return self.bulk.submit(self.application, [Registration(name) for name in filenames])

    def records(self, batch_id: str) -> list[JobRecordRow]:
        return self.bulk.progress(self.application, batch_id, "").records


def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)


def processed(jobs: Jobs, batch_id: str) -> list[JobRecordRow]:
    wait_for(lambda: all(r.status == "Processed" for r in jobs.records(batch_id)))
    return jobs.records(batch_id)


@contextmanager
def running_jobs(domain: Domain, application: Application, tmp_path: Path) -> Iterator[Jobs]:
    """Jobs of the application, carried out by a running worker."""
    settings = JobsSettings(workers=2, max_attempts=2, retry_base_s=RETRY_S, lease_s=600)
    work_arrived = threading.Event()
    bulk = BulkJobs(domain.deps, settings, local_root=tmp_path, work_arrived=work_arrived)
    worker = BulkWorker(
        domain.deps, bulk, settings, max_image_bytes=1 << 20, work_arrived=work_arrived
    )
    folder = tmp_path / application.gallery_id
    folder.mkdir()
    worker.start()
    try:
        yield Jobs(bulk, folder, application)
    finally:
        worker.stop()


@pytest.fixture
def jobs(domain: Domain, application: Application, tmp_path: Path) -> Iterator[Jobs]:
    with running_jobs(domain, application, tmp_path) as running:
        yield running


def test_records_register_subjects_or_record_why_not(domain: Domain, jobs: Jobs) -> None:
    (jobs.folder / "alice.jpg").write_bytes(b"alice#1")
    (jobs.folder / "blank.jpg").write_bytes(b"blank")
    domain.extractor.faceless.add(b"blank")
    records = processed(jobs, jobs.submit("alice.jpg", "blank.jpg", "missing.jpg"))
    alice, blank, missing = records
    assert (alice.register_status, alice.attempts) == ("Success", 1)
    assert json.loads(alice.attributes_json)["faceQualityScore"] == pytest.approx(0.9)
    events = Enrolment(domain.deps).list_events(jobs.application, alice.subject_id)
    assert events == [alice.event_id]
    assert domain.index.event_ids(jobs.application.gallery_id) == {alice.event_id}
    assert (blank.register_status, blank.reason) == (
        "Failed",
        "No face was found in the provided image.",
    )
    assert missing.register_status == "Failed"
    assert [r.attempts for r in records] == [1, 1, 1]


def test_a_passing_failure_is_retried_after_its_back_off(domain: Domain, jobs: Jobs) -> None:
    (jobs.folder / "alice.jpg").write_bytes(b"alice#1")
    domain.extractor.failures = 1
    batch_id = jobs.submit("alice.jpg")
    wait_for(lambda: jobs.records(batch_id)[0].reason != "")
    (waiting,) = jobs.records(batch_id)
    assert (waiting.status, waiting.attempts) == ("New", 1)
    assert waiting.next_attempt_ms == domain.clock() + int(RETRY_S * 1000)
    domain.clock.advance(int(RETRY_S * 1000))
    jobs.bulk.wake()
    (done,) = processed(jobs, batch_id)
    assert (done.register_status, done.attempts) == ("Success", 2)


def test_a_failure_that_keeps_passing_gives_up_after_the_last_attempt(
    domain: Domain, jobs: Jobs
) -> None:
    (jobs.folder / "alice.jpg").write_bytes(b"alice#1")
    domain.extractor.failures = 100
    batch_id = jobs.submit("alice.jpg")
    wait_for(lambda: jobs.records(batch_id)[0].reason != "")
    assert jobs.records(batch_id)[0].attempts == 1
    domain.clock.advance(int(RETRY_S * 1000))
    jobs.bulk.wake()
    (done,) = processed(jobs, batch_id)
    assert done.register_status == "Failed"
    assert done.attempts == 2
    assert done.reason == "The extractor is unavailable. (gave up after 2 attempts)"


def test_a_full_gallery_fails_the_records_it_has_no_room_for(
    domain: Domain, tmp_path: Path
) -> None:
    _, small = domain.gallery("small", size=1)
    with running_jobs(domain, small, tmp_path) as jobs:
        (jobs.folder / "alice.jpg").write_bytes(b"alice#1")
        (jobs.folder / "bob.jpg").write_bytes(b"bob#1")
        records = processed(jobs, jobs.submit("alice.jpg", "bob.jpg"))
        statuses = sorted((r.register_status, r.reason) for r in records)
        assert statuses == [
            ("Failed", "Gallery is full: 1 of 1 slots in use."),
            ("Success", ""),
        ]
        assert len(domain.index.event_ids(small.gallery_id)) == 1
