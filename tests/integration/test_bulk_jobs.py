"""Bulk registration jobs end to end: REST and gRPC submission, the local-folder and S3
sources (a real S3 endpoint on loopback), outcomes and reasons, paging, retries, and
the `facegate bulk register` command."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from sqlalchemy import Connection, update

from bench.dataset import faces_dir
from facegate.cli import API_KEY_VARIABLE
from facegate.contract import API_KEY_METADATA
from facegate.v1 import jobs_pb2, jobs_pb2_grpc
from gateway.store import galleries as galleries_store
from gateway.store import jobs as jobs_store
from gateway.store.records import BulkSource
from gateway.store.schema import job_records
from gateway.tenancy import create_tenant
from tests.support.s3 import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, new_bucket
from tests.support.stack import SignedClient, Stack, running_stack

FACES = faces_dir()
OBAMA = FACES / "test" / "face_recognition" / "obama"
MULTI = FACES / "test" / "compreface" / "_multi" / "016_8.jpg"
NO_FACE = FACES / "test" / "compreface" / "_noface" / "017_0.jpg"
WAIT_S = 120


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder the operator lets jobs read (FACEGATE_JOBS_LOCAL_ROOTS)."""
    return tmp_path_factory.mktemp("archive")


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, archive: Path, s3_endpoint: str
) -> Iterator[Stack]:
    jobs = {
        "max_registrations": 2000,
        "max_attempts": 2,
        "retry_base_s": 0.05,
        "local_roots": (str(archive),),
        "s3_endpoints": (s3_endpoint, "http://127.0.0.1:9"),
    }
    with running_stack(
        tmp_path_factory.mktemp("jobs-stack"), rate_per_second=0, jobs=jobs
    ) as running:
        yield running


@pytest.fixture(scope="module")
def client(stack: Stack) -> Iterator[SignedClient]:
    created = create_tenant(stack.deps.database, stack.deps.secrets, "jobs-tenant")
    signer = SignedClient(stack.rest_url, created.tenant.access_key_id, created.secret_access_key)
    gallery = signer.call("POST", "/api/galleries", {"name": "bulk", "size": 5000}).json()
    keyed = signer.with_api_key(gallery["apiKey"])
    keyed.call("POST", "/v1.1/tags/staff")
    yield keyed
    signer.close()


def gallery_folder(stack: Stack, client: SignedClient) -> Path:
    """The gallery's default source: <data dir>/bulk/<gallery id>/."""
    galleries = client.with_api_key(None).call("GET", "/api/galleries").json()["galleries"]
    gallery_id = str(next(g["id"] for g in galleries if g["name"] == "bulk"))
    folder: Path = stack.settings.bulk_root / gallery_id
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def all_records(client: SignedClient, batch_id: str) -> list[dict[str, str]]:
    records: list[dict[str, str]] = []
    key = ""
    while True:
        query = {"pagingId": key} if key else None
        page = client.call("GET", f"/v1.1/jobs/bulkregister/{batch_id}", query=query)
        assert page.status_code == 200, page.text
        body = page.json()
        assert body["batchId"] == batch_id
        records += body["processed"]
        key = body["lastEvaluatedKey"]
        if not key:
            return records


def wait_processed(client: SignedClient, batch_id: str) -> list[dict[str, str]]:
    deadline = time.monotonic() + WAIT_S
    while True:
        records = all_records(client, batch_id)
        if all(r["status"] == "Processed" for r in records):
            return records
        assert time.monotonic() < deadline, [r for r in records if r["status"] == "New"][:3]
        time.sleep(0.2)


def test_local_folder_job_over_rest(stack: Stack, client: SignedClient) -> None:
    folder = gallery_folder(stack, client)
    shutil.copy(OBAMA / "obama.jpg", folder / "obama.jpg")
    (folder / "people").mkdir(exist_ok=True)
    shutil.copy(OBAMA / "obama2.jpg", folder / "people" / "obama 2.jpg")
    shutil.copy(MULTI, folder / "group.jpg")
    shutil.copy(NO_FACE, folder / "empty.jpg")
    (folder / "notes.txt").write_text("not an image")
    registrations: list[dict[str, object]] = [
        {"filename": "obama.jpg", "tags": ["staff"]},
        {"filename": "people/obama 2.jpg"},
        {"filename": "group.jpg"},
        {"filename": "empty.jpg"},
        {"filename": "notes.txt"},
        {"filename": "missing.jpg"},
    ]
    response = client.call("POST", "/v1.1/jobs/bulkregister", {"registrations": registrations})
    assert response.status_code == 200, response.text
    batch_id = response.json()["batchId"]
    records = wait_processed(client, batch_id)
    assert [r["filename"] for r in records] == [r["filename"] for r in registrations]
    by_name = {r["filename"]: r for r in records}
    for name in ("obama.jpg", "people/obama 2.jpg"):
        record = by_name[name]
        assert (record["registerStatus"], record["reason"], record["attempts"]) == (
            "Success",
            "",
            "1",
        )
        assert json.loads(record["attributesJson"])["faceArea"]["left"].isdigit()
        assert record["subjectId"]
        assert record["eventId"]
    for name, reason in (
        ("group.jpg", "face"),
        ("empty.jpg", "face"),
        ("notes.txt", "image"),
        ("missing.jpg", "not found"),
    ):
        record = by_name[name]
        assert record["registerStatus"] == "Failed", record
        assert reason in record["reason"].lower(), record
        assert (record["subjectId"], record["eventId"], record["attributesJson"]) == ("", "", "")
    # The registered subjects are searchable; the tag was applied.
    found = client.call(
        "POST",
        "/v1.1/face/search",
        {"probe": _b64(OBAMA / "obama3.jpg"), "tags": ["staff"]},
    ).json()
    assert [c["id"] for c in found["candidates"]] == [by_name["obama.jpg"]["subjectId"]]


def test_a_refused_record_carries_the_rest_error_message(
    stack: Stack, client: SignedClient
) -> None:
    signer = client.with_api_key(None)
    created = signer.call(
        "POST", "/api/galleries", {"name": "strict", "size": 10, "faceMinimumQualityScore": 1.0}
    ).json()
    strict = signer.with_api_key(created["apiKey"])
    folder: Path = stack.settings.bulk_root / str(created["id"])
    folder.mkdir(parents=True, exist_ok=True)
    photos = {"obama.jpg": OBAMA / "obama.jpg", "group.jpg": MULTI, "empty.jpg": NO_FACE}
    for name, path in photos.items():
        shutil.copy(path, folder / name)
    batch_id = strict.call(
        "POST", "/v1.1/jobs/bulkregister", {"registrations": [{"filename": n} for n in photos]}
    ).json()["batchId"]
    records = {r["filename"]: r for r in wait_processed(strict, batch_id)}
    expected_types = {
        "obama.jpg": "PoorQuality",
        "group.jpg": "MultipleFaces",
        "empty.jpg": "NoFace",
    }
    for name, path in photos.items():
        refused = strict.call("POST", "/v1.1/subjects", {"face": _b64(path)})
        assert refused.status_code == 400
        assert refused.json()["errorType"] == expected_types[name]
        assert records[name]["registerStatus"] == "Failed"
        assert records[name]["reason"] == refused.json()["message"]
    assert "below the minimum 1." in records["obama.jpg"]["reason"]


def test_progress_pages_of_a_thousand(stack: Stack, client: SignedClient) -> None:
    registrations = [{"filename": f"nothing/{i:05d}.jpg"} for i in range(1003)]
    batch_id = client.call(
        "POST", "/v1.1/jobs/bulkregister", {"registrations": registrations}
    ).json()["batchId"]
    wait_processed(client, batch_id)
    first = client.call("GET", f"/v1.1/jobs/bulkregister/{batch_id}").json()
    assert len(first["processed"]) == 1000
    assert first["lastEvaluatedKey"]
    by_path = client.call(
        "GET", f"/v1.1/jobs/bulkregister/{batch_id}/{first['lastEvaluatedKey']}"
    ).json()
    by_query = client.call(
        "GET",
        f"/v1.1/jobs/bulkregister/{batch_id}",
        query={"pagingId": first["lastEvaluatedKey"]},
    ).json()
    assert by_path == by_query
    assert [r["filename"] for r in by_path["processed"]] == [
        f"nothing/{i:05d}.jpg" for i in (1000, 1001, 1002)
    ]
    assert by_path["lastEvaluatedKey"] == ""
    assert client.call("GET", "/v1.1/jobs/bulkregister/no-such-batch").status_code == 404


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"registrations": []}, "empty"),
        ({"registrations": [{"filename": "a.jpg", "tags": ["nope"]}]}, "nope"),
        ({"registrations": [{"filename": "../a.jpg"}]}, "filename"),
        ({"registrations": [{"filename": "/etc/passwd"}]}, "filename"),
        ({"registrations": [{"filename": f"{i}.jpg"} for i in range(2001)]}, "2000"),
    ],
)
def test_bad_submissions_are_refused(
    client: SignedClient, body: dict[str, object], fragment: str
) -> None:
    response = client.call("POST", "/v1.1/jobs/bulkregister", body)
    assert response.status_code == 400, response.text
    assert response.json()["errorType"] == "InvalidRequest"
    assert fragment in response.json()["message"]


def test_s3_source_over_grpc(stack: Stack, client: SignedClient, s3_endpoint: str) -> None:
    bucket = new_bucket(
        s3_endpoint,
        {
            "archive/2019/obama.jpg": (OBAMA / "obama1.jpg").read_bytes(),
            "archive/2019/empty.jpg": NO_FACE.read_bytes(),
        },
    )
    with grpc.insecure_channel(stack.grpc_address) as channel:
        jobs = jobs_pb2_grpc.JobsStub(channel)
        metadata = ((API_KEY_METADATA, client.api_key or ""),)
        jobs.SetBulkSource(
            jobs_pb2.JobsSetBulkSourceRequest(
                uri=f"s3://{bucket}/archive/2019",
                endpoint_url=s3_endpoint,
                region=REGION,
                access_key_id=ACCESS_KEY_ID,
                secret_access_key=SECRET_ACCESS_KEY,
            ),
            metadata=metadata,
        )
        batch = jobs.BulkRegister(
            jobs_pb2.JobsBulkRegisterRequest(
                registrations=[
                    jobs_pb2.BulkRegistration(filename="obama.jpg"),
                    jobs_pb2.BulkRegistration(filename="empty.jpg"),
                    jobs_pb2.BulkRegistration(filename="absent.jpg"),
                ]
            ),
            metadata=metadata,
        )
        records = wait_processed(client, batch.batch_id)
        page = jobs.GetBulkRegisterProgress(
            jobs_pb2.JobsGetBulkRegisterProgressRequest(batch_id=batch.batch_id),
            metadata=metadata,
        )
    assert [r["registerStatus"] for r in records] == ["Success", "Failed", "Failed"]
    assert "not found" in records[2]["reason"]
    assert page.processed[0].attributes.face_quality_score > 0
    # Back to the default local folder for the other tests.
    with grpc.insecure_channel(stack.grpc_address) as channel:
        jobs_pb2_grpc.JobsStub(channel).SetBulkSource(
            jobs_pb2.JobsSetBulkSourceRequest(uri=gallery_folder(stack, client).as_uri()),
            metadata=((API_KEY_METADATA, client.api_key or ""),),
        )


def test_transient_failures_are_retried_then_given_up(stack: Stack, client: SignedClient) -> None:
    with grpc.insecure_channel(stack.grpc_address) as channel:
        stub = jobs_pb2_grpc.JobsStub(channel)
        metadata = ((API_KEY_METADATA, client.api_key or ""),)
        # An S3 endpoint that refuses connections: a transient failure each time.
        stub.SetBulkSource(
            jobs_pb2.JobsSetBulkSourceRequest(
                uri="s3://bucket/x",
                endpoint_url="http://127.0.0.1:9",
                region=REGION,
                access_key_id=ACCESS_KEY_ID,
                secret_access_key=SECRET_ACCESS_KEY,
            ),
            metadata=metadata,
        )
        batch = stub.BulkRegister(
            jobs_pb2.JobsBulkRegisterRequest(
                registrations=[jobs_pb2.BulkRegistration(filename="a.jpg")]
            ),
            metadata=metadata,
        )
        stub.SetBulkSource(
            jobs_pb2.JobsSetBulkSourceRequest(uri=gallery_folder(stack, client).as_uri()),
            metadata=metadata,
        )
    (record,) = wait_processed(client, batch.batch_id)
    assert record["registerStatus"] == "Failed"
    assert record["attempts"] == "2"
    assert "gave up after 2 attempts" in record["reason"]


def test_sources_are_limited_to_what_the_operator_allows(
    stack: Stack, client: SignedClient, archive: Path
) -> None:
    """A tenant's application key must not turn the workers on the gateway's own files,
    another gallery's folder, internal URLs or the deployment's AWS credentials."""
    others = stack.settings.bulk_root / "another-gallery"
    refused = [
        jobs_pb2.JobsSetBulkSourceRequest(uri="file:///etc"),
        jobs_pb2.JobsSetBulkSourceRequest(uri=others.as_uri()),
        jobs_pb2.JobsSetBulkSourceRequest(
            uri="s3://b/p",
            endpoint_url="http://169.254.169.254",
            access_key_id=ACCESS_KEY_ID,
            secret_access_key=SECRET_ACCESS_KEY,
        ),
        jobs_pb2.JobsSetBulkSourceRequest(uri="s3://b/p"),  # no keys of its own
    ]
    metadata = ((API_KEY_METADATA, client.api_key or ""),)
    with grpc.insecure_channel(stack.grpc_address) as channel:
        stub = jobs_pb2_grpc.JobsStub(channel)
        for request in refused:
            with pytest.raises(grpc.RpcError) as error:
                stub.SetBulkSource(request, metadata=metadata)
            assert error.value.code() is grpc.StatusCode.INVALID_ARGUMENT, request
        stub.SetBulkSource(
            jobs_pb2.JobsSetBulkSourceRequest(uri=(archive / "any").as_uri()), metadata=metadata
        )
        stub.SetBulkSource(
            jobs_pb2.JobsSetBulkSourceRequest(uri=gallery_folder(stack, client).as_uri()),
            metadata=metadata,
        )


def test_cli_registers_a_folder(stack: Stack, client: SignedClient, archive: Path) -> None:
    tmp_path = archive / "cli"
    tmp_path.mkdir()
    people = sorted(p for p in (FACES / "lfw-dev").iterdir() if p.is_dir())[:6]
    for person in people:
        shutil.copy(next(person.glob("*.jpg")), tmp_path / f"{person.name}.jpg")
    (tmp_path / "readme.md").write_text("skipped: not an image file name")
    # The key as the README passes it: in the environment, not on the command line.
    result = subprocess.run(
        [
            sys.executable, "-m", "facegate", "bulk", "register",
            "--dir", str(tmp_path),
            "--tags", "staff",
            "--gateway", stack.grpc_address,
        ],
        env={**os.environ, API_KEY_VARIABLE: client.api_key or ""},
        capture_output=True, text=True, timeout=WAIT_S, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["submitted"] == 6
    assert summary["succeeded"] + summary["failed"] == 6
    assert summary["succeeded"] >= 5, summary
    assert "6/6" in result.stderr  # the progress bar reached the end


def _b64(path: Path) -> str:
    import base64

    return base64.b64encode(path.read_bytes()).decode()


def test_a_record_claimed_past_its_attempts_is_given_up(stack: Stack, client: SignedClient) -> None:
    """A record that keeps coming back without an outcome (its worker died each time)
    is failed once claimed more than max_attempts (2 here), not retried forever."""
    galleries = client.with_api_key(None).call("GET", "/api/galleries").json()["galleries"]
    gallery_id = str(next(g["id"] for g in galleries if g["name"] == "bulk"))
    folder = gallery_folder(stack, client)
    shutil.copy(OBAMA / "obama.jpg", folder / "again.jpg")
    source = BulkSource(gallery_id, folder.as_uri(), "", "", "", None)
    with stack.deps.database.write() as conn:
        application = next(
            a for a in galleries_store.list_applications(conn, _tenant_of(conn, gallery_id))
        )
        job = jobs_store.create_job(
            conn,
            id="crash-looping",
            gallery_id=gallery_id,
            application_id=application.id,
            source=source,
            records=[("r-1", "again.jpg", 0)],
            now_ms=1,
        )
        # As if two claims had died without an outcome.
        conn.execute(update(job_records).values(attempts=2).where(job_records.c.job_id == job.id))
    stack.gateway.bulk.wake()
    (record,) = wait_processed(client, job.id)
    assert (record["registerStatus"], record["attempts"]) == ("Failed", "3")
    assert record["reason"] == "gave up after 2 attempts"


def _tenant_of(conn: Connection, gallery_id: str) -> str:
    gallery = galleries_store.gallery_by_id(conn, gallery_id)
    assert gallery is not None
    return gallery.tenant_id


def test_a_full_gallery_fails_the_records_it_has_no_slot_for(
    stack: Stack, client: SignedClient
) -> None:
    signer = client.with_api_key(None)
    gallery = signer.call("POST", "/api/galleries", {"name": "tiny", "size": 3}).json()
    tiny = signer.with_api_key(gallery["apiKey"])
    folder = stack.settings.bulk_root / str(gallery["id"])
    folder.mkdir(parents=True)
    names = [f"{n}-{photo.name}" for n in range(2) for photo in sorted(OBAMA.iterdir())][:5]
    for name in names:
        shutil.copy(OBAMA / name.split("-", 1)[1], folder / name)
    registrations = [{"filename": name} for name in names]
    response = tiny.call("POST", "/v1.1/jobs/bulkregister", {"registrations": registrations})
    assert response.status_code == 200, response.text
    records = wait_processed(tiny, response.json()["batchId"])
    outcomes = sorted((r["registerStatus"], r["reason"]) for r in records)
    assert (
        outcomes
        == [("Failed", "Gallery is full: 3 of 3 slots in use.")] * 2 + [("Success", "")] * 3
    )
    listed = tiny.call("GET", "/v1.1/subjects").json()
    assert sorted(s["id"] for s in listed["subjects"]) == sorted(
        r["subjectId"] for r in records if r["registerStatus"] == "Success"
    )
