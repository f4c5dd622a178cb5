"""Bulk job rules: what a submission may hold, paging through its records, and where a
gallery's jobs may read."""

from __future__ import annotations

from pathlib import Path

import pytest

from facegate.errors import ErrorType, FacegateError
from facegate.settings import JobsSettings
from gateway.bulk import PAGE_SIZE, BulkJobs, Registration
from gateway.sources import SourceConfig
from gateway.store import jobs
from gateway.store.records import Application
from gateway.tagging import Tagging
from tests.unit.gateway.domain.conftest import Domain


def bulk_jobs(domain: Domain, tmp_path: Path, settings: JobsSettings | None = None) -> BulkJobs:
    return BulkJobs(domain.deps, settings or JobsSettings(), local_root=tmp_path / "bulk")


def test_a_job_holds_one_record_per_registration_in_order(
    domain: Domain, application: Application, tmp_path: Path
) -> None:
    Tagging(domain.deps).create(application, "vip")
    bulk = bulk_jobs(domain, tmp_path)
    batch_id = bulk.submit(application, [Registration("a.jpg"), Registration("b/c.jpg", ("vip",))])
    page = bulk.progress(application, batch_id, "")
    assert [(r.filename, r.tag_mask, r.status, r.attempts) for r in page.records] == [
        ("a.jpg", 0, "New", 0),
        ("b/c.jpg", 1, "New", 0),
    ]
    assert page.last_evaluated_key == ""
    with domain.database.read() as conn:
        job = jobs.get_job(conn, application.gallery_id, batch_id)
    assert job is not None
    assert job.source.uri == (tmp_path / "bulk" / application.gallery_id).resolve().as_uri()


def test_progress_comes_in_pages(domain: Domain, application: Application, tmp_path: Path) -> None:
    bulk = bulk_jobs(domain, tmp_path)
    batch_id = bulk.submit(application, [Registration(f"{n}.jpg") for n in range(PAGE_SIZE + 1)])
    first = bulk.progress(application, batch_id, "")
    assert len(first.records) == PAGE_SIZE
    second = bulk.progress(application, batch_id, first.last_evaluated_key)
    assert [r.filename for r in second.records] == [f"{PAGE_SIZE}.jpg"]
    assert second.last_evaluated_key == ""
    for paging_id in ("x", "-1", str(PAGE_SIZE + 1)):
        with pytest.raises(FacegateError) as refused:
            bulk.progress(application, batch_id, paging_id)
        assert refused.value.error_type is ErrorType.INVALID_REQUEST


def test_another_gallerys_job_is_not_found(
    domain: Domain, application: Application, tmp_path: Path
) -> None:
    bulk = bulk_jobs(domain, tmp_path)
    batch_id = bulk.submit(application, [Registration("a.jpg")])
    _, other = domain.gallery("other")
    with pytest.raises(FacegateError) as hidden:
        bulk.progress(other, batch_id, "")
    assert hidden.value.error_type is ErrorType.NOT_FOUND


@pytest.mark.parametrize(
    ("registrations", "message"),
    [
        ([], "registrations must not be empty."),
        ([Registration("a.jpg")] * 3, "A job holds at most 2 registrations, not 3."),
        ([Registration("../a.jpg")], None),
        ([Registration("/etc/passwd")], "filename must be a relative path."),
        ([Registration("a.jpg", ("unknown",))], "Tag unknown does not exist."),
    ],
)
def test_a_submission_is_checked_as_a_whole(
    domain: Domain,
    application: Application,
    tmp_path: Path,
    registrations: list[Registration],
    message: str | None,
) -> None:
    bulk = bulk_jobs(domain, tmp_path, JobsSettings(max_registrations=2))
    with pytest.raises(FacegateError) as refused:
        bulk.submit(application, registrations)
    assert refused.value.error_type is ErrorType.INVALID_REQUEST
    if message is not None:
        assert refused.value.message == message
    with domain.database.read() as conn:
        assert jobs.pending_job_ids(conn) == []


def test_a_local_source_must_be_the_gallerys_folder_or_a_listed_root(
    domain: Domain, application: Application, tmp_path: Path
) -> None:
    listed = tmp_path / "imports"
    bulk = bulk_jobs(domain, tmp_path, JobsSettings(local_roots=(str(listed),)))
    own = tmp_path / "bulk" / application.gallery_id / "photos"
    bulk.set_source(application, SourceConfig(uri=own.as_uri()))
    bulk.set_source(application, SourceConfig(uri=(listed / "2024").as_uri()))
    for outside in (tmp_path / "bulk" / "another-gallery", tmp_path):
        with pytest.raises(FacegateError) as refused:
            bulk.set_source(application, SourceConfig(uri=outside.as_uri()))
        assert refused.value.error_type is ErrorType.INVALID_REQUEST


def test_an_s3_source_needs_an_allowed_endpoint_and_its_own_keys(
    domain: Domain, application: Application, tmp_path: Path
) -> None:
    bulk = bulk_jobs(domain, tmp_path, JobsSettings(s3_endpoints=("http://minio:9000",)))
    keyed = SourceConfig(uri="s3://bucket/prefix", access_key_id="AK", secret_access_key="SK")
    bulk.set_source(application, keyed)
    with domain.database.read() as conn:
        stored = jobs.bulk_source(conn, application.gallery_id)
    assert stored is not None
    assert stored.secret_ciphertext is not None
    assert b"SK" not in stored.secret_ciphertext
    assert bulk.source_config(stored) == keyed
    with pytest.raises(FacegateError):
        bulk.set_source(application, SourceConfig(uri="s3://bucket/prefix"))
    elsewhere = SourceConfig(
        uri="s3://bucket/prefix",
        endpoint_url="http://169.254.169.254",
        access_key_id="AK",
        secret_access_key="SK",
    )
    with pytest.raises(FacegateError) as refused:
        bulk.set_source(application, elsewhere)
    assert "not one this deployment allows" in refused.value.message
