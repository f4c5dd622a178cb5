"""The protobuf contracts: stubs in sync, the rpcs and fields NEC ID endpoints need."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import Descriptor, ServiceDescriptor

from facegate.v1 import face_pb2, subjects_pb2

REPO_ROOT = Path(__file__).resolve().parents[3]
PROTO_DIR = REPO_ROOT / "proto" / "facegate" / "v1"
GENPROTO = REPO_ROOT / "tools" / "genproto.py"
PACKAGE = "facegate.v1"
PROTO_NAMES = sorted(path.stem for path in PROTO_DIR.glob("*.proto"))

# Every rpc a public NEC ID endpoint or an internal caller needs: (service, rpc).
EXPECTED_RPCS = [
    ("Subjects", "List"),  # GET /v1.1/subjects
    ("Subjects", "Register"),  # POST /v1.1/subjects
    ("Subjects", "Update"),  # PUT /v1.1/subjects/{subjectId}
    ("Subjects", "Unregister"),  # DELETE /v1.1/subjects/{subjectId}
    ("Events", "List"),  # GET /v1.1/subjects/{subjectId}/events
    ("Events", "Register"),  # POST /v1.1/subjects/{subjectId}/events
    ("Events", "Update"),  # PUT /v1.1/subjects/{subjectId}/events/{eventId}
    ("Events", "Unregister"),  # DELETE /v1.1/subjects/{subjectId}/events/{eventId}
    ("Face", "Extract"),  # POST /v1.1/face/extract
    ("Face", "Search"),  # POST /v1.1/face/search
    ("Face", "VerifySubject"),  # POST /v1.1/face/verify {id, probe}
    ("Face", "VerifyFaces"),  # POST /v1.1/face/verify {face, probe}
    ("Tags", "List"),  # GET /v1.1/tags
    ("Tags", "Create"),  # POST /v1.1/tags/{name}
    ("Tags", "Rename"),  # PUT /v1.1/tags/{oldName}
    ("Tags", "Delete"),  # DELETE /v1.1/tags/{name}
    ("Jobs", "BulkRegister"),  # POST /v1.1/jobs/bulkregister
    ("Jobs", "GetBulkRegisterProgress"),  # GET /v1.1/jobs/bulkregister/{batchId}[/{pagingId}]
    ("Jobs", "SetBulkSource"),  # facegate only: where the gallery's jobs read files
    ("Health", "Check"),  # GET /v1.1/health
    ("Galleries", "List"),  # GET /api/galleries
    ("Galleries", "Get"),  # GET /api/galleries/{galleryId}
    ("Galleries", "Create"),  # POST /api/galleries
    ("Galleries", "Update"),  # PATCH /api/galleries/{galleryId}
    ("Galleries", "Delete"),  # DELETE /api/galleries/{galleryId}
    ("Applications", "List"),  # GET /api/applications
    ("Applications", "Get"),  # GET /api/applications/{applicationId}
    ("Applications", "Create"),  # POST /api/applications
    ("Applications", "Update"),  # PATCH /api/applications/{applicationId}
    ("Applications", "Delete"),  # DELETE /api/applications/{applicationId}
    ("Extractor", "Extract"),
    ("Extractor", "Compare"),
    ("Extractor", "Info"),
    ("Matcher", "Upsert"),
    ("Matcher", "Delete"),
    ("Matcher", "DeleteSubject"),
    ("Matcher", "ClearTagBit"),
    ("Matcher", "DropGallery"),
    ("Matcher", "Search"),
    ("Matcher", "Stats"),
    ("Matcher", "Snapshot"),
]

# Each NEC JSON field (request body, path parameter or response) and the proto
# field that carries it: (message, NEC name, proto field).
NEC_FIELDS = [
    ("SubjectsListRequest", "start", "start"),
    ("SubjectsListRequest", "length", "length"),
    ("SubjectsListRequest", "dir", "dir"),
    ("SubjectsListResponse", "subjects", "subjects"),
    ("SubjectsListResponse", "total", "total"),
    ("SubjectEntry", "id", "id"),
    ("SubjectEntry", "eventId", "event_id"),
    ("SubjectEntry", "status", "status"),
    ("SubjectEntry", "lastUpdated", "last_updated"),
    ("SubjectsRegisterRequest", "face", "face"),
    ("SubjectsRegisterRequest", "tags", "tags"),
    ("SubjectsRegisterResponse", "id", "id"),
    ("SubjectsRegisterResponse", "eventId", "event_id"),
    ("SubjectsRegisterResponse", "attributes", "attributes"),
    ("SubjectsUpdateRequest", "subjectId", "id"),
    ("SubjectsUpdateRequest", "face", "face"),
    ("SubjectsUpdateRequest", "tags", "tags"),
    ("SubjectsUpdateResponse", "id", "id"),
    ("SubjectsUpdateResponse", "eventId", "event_id"),
    ("SubjectsUpdateResponse", "attributes", "attributes"),
    ("SubjectsUnregisterRequest", "subjectId", "id"),
    ("EventsListRequest", "subjectId", "subject_id"),
    ("EventsListResponse", "id", "id"),
    ("EventsListResponse", "events", "events"),
    ("EventEntry", "id", "id"),
    ("EventsRegisterRequest", "subjectId", "subject_id"),
    ("EventsRegisterRequest", "face", "face"),
    ("EventsRegisterRequest", "tags", "tags"),
    ("EventsRegisterResponse", "id", "id"),
    ("EventsRegisterResponse", "eventId", "event_id"),
    ("EventsRegisterResponse", "attributes", "attributes"),
    ("EventsUpdateRequest", "subjectId", "subject_id"),
    ("EventsUpdateRequest", "eventId", "event_id"),
    ("EventsUpdateRequest", "face", "face"),
    ("EventsUpdateRequest", "tags", "tags"),
    ("EventsUpdateResponse", "id", "id"),
    ("EventsUpdateResponse", "eventId", "event_id"),
    ("EventsUpdateResponse", "attributes", "attributes"),
    ("EventsUnregisterRequest", "subjectId", "subject_id"),
    ("EventsUnregisterRequest", "eventId", "event_id"),
    ("FaceExtractRequest", "faces", "image"),
    ("FaceExtractRequest", "limit", "limit"),
    ("FaceExtractResponse", "faces", "faces"),
    ("ExtractedFace", "attributes", "attributes"),
    ("FaceSearchRequest", "probe", "probe"),
    ("FaceSearchRequest", "threshold", "threshold"),
    ("FaceSearchRequest", "limit", "limit"),
    ("FaceSearchRequest", "tags", "tags"),
    ("FaceSearchResponse", "candidates", "candidates"),
    ("FaceSearchResponse", "attributes", "attributes"),
    ("Candidate", "id", "id"),
    ("Candidate", "score", "score"),
    ("Candidate", "events", "events"),
    ("CandidateEvent", "id", "id"),
    ("CandidateEvent", "score", "score"),
    ("FaceVerifySubjectRequest", "id", "id"),
    ("FaceVerifySubjectRequest", "probe", "probe"),
    ("FaceVerifySubjectResponse", "id", "id"),
    ("FaceVerifySubjectResponse", "score", "score"),
    ("FaceVerifyFacesRequest", "face", "face"),
    ("FaceVerifyFacesRequest", "probe", "probe"),
    ("FaceVerifyFacesResponse", "score", "score"),
    ("FaceAttributes", "faceArea", "face_area"),
    ("FaceAttributes", "headArea", "head_area"),
    ("FaceAttributes", "rightEyeCenter", "right_eye_center"),
    ("FaceAttributes", "leftEyeCenter", "left_eye_center"),
    ("FaceAttributes", "frontalFaceScore", "frontal_face_score"),
    ("FaceAttributes", "faceRoll", "face_roll"),
    ("FaceAttributes", "facePan", "face_pan"),
    ("FaceAttributes", "faceTilt", "face_tilt"),
    ("FaceAttributes", "faceScore", "face_score"),
    ("FaceAttributes", "faceQualityScore", "face_quality_score"),
    ("Box", "left", "left"),
    ("Box", "top", "top"),
    ("Box", "right", "right"),
    ("Box", "bottom", "bottom"),
    ("Point", "x", "x"),
    ("Point", "y", "y"),
    ("TagsListResponse", "(array)", "names"),
    ("TagsCreateRequest", "name", "name"),
    ("TagsRenameRequest", "oldName", "old_name"),
    ("TagsRenameRequest", "newName", "new_name"),
    ("TagsDeleteRequest", "name", "name"),
    ("JobsBulkRegisterRequest", "registrations", "registrations"),
    ("BulkRegistration", "filename", "filename"),
    ("BulkRegistration", "tags", "tags"),
    ("JobsBulkRegisterResponse", "batchId", "batch_id"),
    ("JobsGetBulkRegisterProgressRequest", "batchId", "batch_id"),
    ("JobsGetBulkRegisterProgressRequest", "pagingId", "paging_id"),
    ("JobsGetBulkRegisterProgressResponse", "batchId", "batch_id"),
    ("JobsGetBulkRegisterProgressResponse", "processed", "processed"),
    ("JobsGetBulkRegisterProgressResponse", "lastEvaluatedKey", "last_evaluated_key"),
    ("JobRecord", "id", "id"),
    ("JobRecord", "filename", "filename"),
    ("JobRecord", "attempts", "attempts"),
    ("JobRecord", "eventId", "event_id"),
    ("JobRecord", "subjectId", "subject_id"),
    ("JobRecord", "registerStatus", "register_status"),
    ("JobRecord", "reason", "reason"),
    ("JobRecord", "status", "status"),
    ("JobRecord", "attributesJson", "attributes"),
    ("HealthCheckResponse", "status", "status"),
    ("Gallery", "id", "id"),
    ("Gallery", "name", "name"),
    ("Gallery", "description", "description"),
    ("Gallery", "size", "size"),
    ("Gallery", "count", "count"),
    ("Gallery", "faceMinimumQualityScore", "face_minimum_quality_score"),
    ("Gallery", "applications", "applications"),
    ("GalleriesGetRequest", "galleryId", "id"),
    ("GalleriesCreateRequest", "name", "name"),
    ("GalleriesCreateRequest", "description", "description"),
    ("GalleriesCreateRequest", "faceMinimumQualityScore", "face_minimum_quality_score"),
    ("GalleriesCreateRequest", "size", "size"),
    ("GalleriesCreateResponse", "apiKey", "api_key"),
    ("GalleriesUpdateRequest", "galleryId", "id"),
    ("GalleriesUpdateRequest", "name", "name"),
    ("GalleriesUpdateRequest", "description", "description"),
    ("GalleriesUpdateRequest", "size", "size"),
    ("GalleriesDeleteRequest", "galleryId", "id"),
    ("Application", "id", "id"),
    ("Application", "name", "name"),
    ("Application", "description", "description"),
    ("Application", "apiKey", "api_key"),
    ("Application", "faceMinimumQualityScore", "face_minimum_quality_score"),
    ("Application", "galleryId", "gallery_id"),
    ("ApplicationsGetRequest", "applicationId", "id"),
    ("ApplicationsCreateRequest", "name", "name"),
    ("ApplicationsCreateRequest", "description", "description"),
    ("ApplicationsCreateRequest", "faceMinimumQualityScore", "face_minimum_quality_score"),
    ("ApplicationsCreateRequest", "galleryId", "gallery_id"),
    ("ApplicationsUpdateRequest", "applicationId", "id"),
    ("ApplicationsUpdateRequest", "name", "name"),
    ("ApplicationsUpdateRequest", "description", "description"),
    ("ApplicationsUpdateRequest", "faceMinimumQualityScore", "face_minimum_quality_score"),
    ("ApplicationsDeleteRequest", "applicationId", "id"),
    ("ErrorDetail", "message", "message"),
    ("ErrorDetail", "errorCode", "error_code"),
    ("ErrorDetail", "errorType", "error_type"),
]

# Fields whose "not given" differs from their zero value, so they need presence.
OPTIONAL_FIELDS = [
    ("SubjectsListRequest", "start"),
    ("SubjectsListRequest", "length"),
    ("FaceExtractRequest", "limit"),
    ("FaceSearchRequest", "threshold"),
    ("FaceSearchRequest", "limit"),
    ("ExtractorExtractRequest", "min_quality"),
    ("MatcherStatsRequest", "gallery_id"),
    ("GalleriesCreateRequest", "face_minimum_quality_score"),
    ("GalleriesUpdateRequest", "name"),
    ("GalleriesUpdateRequest", "description"),
    ("GalleriesUpdateRequest", "size"),
    ("ApplicationsCreateRequest", "face_minimum_quality_score"),
    ("ApplicationsUpdateRequest", "name"),
    ("ApplicationsUpdateRequest", "description"),
    ("ApplicationsUpdateRequest", "face_minimum_quality_score"),
]


def _service(name: str) -> ServiceDescriptor:
    return descriptor_pool.Default().FindServiceByName(f"{PACKAGE}.{name}")


def _message(name: str) -> Descriptor:
    return descriptor_pool.Default().FindMessageTypeByName(f"{PACKAGE}.{name}")


def _run_genproto(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(repo / "tools" / "genproto.py"), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.fixture(scope="module", autouse=True)
def _import_all_stubs() -> None:
    """Import every generated module, which also fills the default descriptor pool."""
    for name in PROTO_NAMES:
        importlib.import_module(f"{PACKAGE}.{name}_pb2")
        importlib.import_module(f"{PACKAGE}.{name}_pb2_grpc")


def test_committed_stubs_match_the_protos() -> None:
    result = _run_genproto(REPO_ROOT, "--check")
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_lists_drift_and_generation_repairs_it(tmp_path: Path) -> None:
    shutil.copytree(REPO_ROOT / "proto", tmp_path / "proto")
    (tmp_path / "tools").mkdir()
    shutil.copy2(GENPROTO, tmp_path / "tools" / "genproto.py")
    package = tmp_path / "facegate" / "v1"
    shutil.copytree(
        REPO_ROOT / "facegate" / "v1", package, ignore=shutil.ignore_patterns("__pycache__")
    )
    (package / "face_pb2.py").write_text("# edited\n", encoding="utf-8")
    (package / "tags_pb2.pyi").unlink()
    (package / "stale_pb2.py").write_text("", encoding="utf-8")

    result = _run_genproto(tmp_path, "--check")
    assert result.returncode == 1
    assert "changed: facegate/v1/face_pb2.py" in result.stdout
    assert "missing: facegate/v1/tags_pb2.pyi" in result.stdout
    assert "extra:   facegate/v1/stale_pb2.py" in result.stdout

    assert _run_genproto(tmp_path).returncode == 0
    result = _run_genproto(tmp_path, "--check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert not (package / "stale_pb2.py").exists()


@pytest.mark.parametrize(("service", "rpc"), EXPECTED_RPCS)
def test_service_has_rpc(service: str, rpc: str) -> None:
    method = _service(service).methods_by_name.get(rpc)
    assert method is not None, f"{service} has no rpc {rpc}"
    # One request and one response message per rpc, named after service and rpc.
    assert method.input_type.name == f"{service}{rpc}Request"
    assert method.output_type.name == f"{service}{rpc}Response"


def test_no_unexpected_rpcs() -> None:
    services = {service for service, _ in EXPECTED_RPCS}
    found = {(service, method.name) for service in services for method in _service(service).methods}
    assert found == set(EXPECTED_RPCS)


@pytest.mark.parametrize(("message", "nec_name", "field"), NEC_FIELDS)
def test_message_carries_nec_field(message: str, nec_name: str, field: str) -> None:
    assert field in _message(message).fields_by_name, f"{message} lacks {field} for {nec_name}"


@pytest.mark.parametrize(("message", "field"), OPTIONAL_FIELDS)
def test_defaulted_field_has_presence(message: str, field: str) -> None:
    assert _message(message).fields_by_name[field].has_presence


@pytest.mark.parametrize("name", PROTO_NAMES)
def test_file_follows_style(name: str) -> None:
    file = descriptor_pool.Default().FindFileByName(f"facegate/v1/{name}.proto")
    assert file.package == PACKAGE
    for enum in file.enum_types_by_name.values():
        assert enum.values[0].number == 0
        assert enum.values[0].name.endswith("_UNSPECIFIED"), enum.name


def test_stubs_are_typed_and_round_trip() -> None:
    request = face_pb2.FaceSearchRequest(probe=b"\xff\xd8", limit=5, tags=["passport"])
    assert request.HasField("limit")
    assert not request.HasField("threshold")
    decoded = face_pb2.FaceSearchRequest.FromString(request.SerializeToString())
    assert decoded == request

    entry = subjects_pb2.SubjectEntry(id="s", event_id="e", status=subjects_pb2.EVENT_STATUS_ACTIVE)
    entry.last_updated.FromMilliseconds(1_545_092_876_427)
    assert entry.last_updated.ToJsonString() == "2018-12-18T00:27:56.427Z"
