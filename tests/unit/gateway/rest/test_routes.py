"""The endpoint table and its router: each NEC endpoint builds the right gRPC call and
renders NEC's status and body; path matching, and the 404 decisions the REST layer makes."""

from __future__ import annotations

import base64
import importlib
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from google.protobuf.descriptor import Descriptor, MethodDescriptor
from google.protobuf.message import Message

from facegate.errors import ErrorType, FacegateError
from facegate.v1 import (
    applications_pb2,
    events_pb2,
    face_pb2,
    galleries_pb2,
    health_pb2,
    jobs_pb2,
    subjects_pb2,
    tags_pb2,
)
from gateway.rest.endpoints import ENDPOINTS, RestCall
from gateway.rest.routes import match

IMAGE_BYTES = b"\xff\xd8\xff\xe0 jpeg bytes!"
IMAGE = base64.b64encode(IMAGE_BYTES).decode()
B64 = "a base64 encoded image"
LIMIT_20 = "limit must be between 1 and 20."
NOT_INTEGER = "threshold must be an integer."

Query = dict[str, list[str]]


@dataclass(frozen=True)
class Typical:
    """A typical request of a route and the call it must become."""

    method: str
    path: str
    query: Query
    body: object
    service: str
    rpc: str
    request: Message


_ROWS: list[tuple[str, str, Query, object, str, str, Message]] = [
    (
        "GET", "/v1.1/subjects", {"start": ["5"], "length": ["10"], "dir": ["desc"]}, None,
        "Subjects", "List",
        subjects_pb2.SubjectsListRequest(start=5, length=10, dir=subjects_pb2.SORT_DIRECTION_DESC),
    ),
    (
        "POST", "/v1.1/subjects", {}, {"face": IMAGE, "tags": ["passport"]},
        "Subjects", "Register",
        subjects_pb2.SubjectsRegisterRequest(face=IMAGE_BYTES, tags=["passport"]),
    ),
    (
        "PUT", "/v1.1/subjects/s1", {}, {"face": IMAGE},
        "Subjects", "Update", subjects_pb2.SubjectsUpdateRequest(id="s1", face=IMAGE_BYTES),
    ),
    (
        "DELETE", "/v1.1/subjects/s1", {}, None,
        "Subjects", "Unregister", subjects_pb2.SubjectsUnregisterRequest(id="s1"),
    ),
    (
        "GET", "/v1.1/subjects/s1/events", {}, None,
        "Events", "List", events_pb2.EventsListRequest(subject_id="s1"),
    ),
    (
        "POST", "/v1.1/subjects/s1/events", {}, {"face": IMAGE, "tags": ["licence"]},
        "Events", "Register",
        events_pb2.EventsRegisterRequest(subject_id="s1", face=IMAGE_BYTES, tags=["licence"]),
    ),
    (
        "PUT", "/v1.1/subjects/s1/events/e1", {}, {"face": IMAGE},
        "Events", "Update",
        events_pb2.EventsUpdateRequest(subject_id="s1", event_id="e1", face=IMAGE_BYTES),
    ),
    (
        "DELETE", "/v1.1/subjects/s1/events/e1", {}, None,
        "Events", "Unregister", events_pb2.EventsUnregisterRequest(subject_id="s1", event_id="e1"),
    ),
    (
        "POST", "/v1.1/face/extract", {}, {"faces": IMAGE, "limit": 12},
        "Face", "Extract", face_pb2.FaceExtractRequest(image=IMAGE_BYTES, limit=12),
    ),
    (
        "POST", "/v1.1/face/search", {},
        {"probe": IMAGE, "threshold": 7500, "limit": 3, "tags": ["passport", "licence"]},
        "Face", "Search",
        face_pb2.FaceSearchRequest(
            probe=IMAGE_BYTES, threshold=7500, limit=3, tags=["passport", "licence"]
        ),
    ),
    (
        "POST", "/v1.1/face/verify", {}, {"id": "s1", "probe": IMAGE},
        "Face", "VerifySubject", face_pb2.FaceVerifySubjectRequest(id="s1", probe=IMAGE_BYTES),
    ),
    (
        "POST", "/v1.1/face/verify", {}, {"face": IMAGE, "probe": IMAGE},
        "Face", "VerifyFaces", face_pb2.FaceVerifyFacesRequest(face=IMAGE_BYTES, probe=IMAGE_BYTES),
    ),
    ("GET", "/v1.1/tags", {}, None, "Tags", "List", tags_pb2.TagsListRequest()),
    (
        "POST", "/v1.1/tags/staff", {}, None,
        "Tags", "Create", tags_pb2.TagsCreateRequest(name="staff"),
    ),
    (
        "PUT", "/v1.1/tags/licence", {}, {"newName": "identification"},
        "Tags", "Rename", tags_pb2.TagsRenameRequest(old_name="licence", new_name="identification"),
    ),
    (
        "DELETE", "/v1.1/tags/passport", {}, None,
        "Tags", "Delete", tags_pb2.TagsDeleteRequest(name="passport"),
    ),
    ("GET", "/v1.1/health", {}, None, "Health", "Check", health_pb2.HealthCheckRequest()),
    (
        "POST", "/v1.1/jobs/bulkregister", {},
        {"registrations": [{"filename": "1.jpg", "tags": ["passport"]}, {"filename": "2.jpg"}]},
        "Jobs", "BulkRegister",
        jobs_pb2.JobsBulkRegisterRequest(
            registrations=[
                jobs_pb2.BulkRegistration(filename="1.jpg", tags=["passport"]),
                jobs_pb2.BulkRegistration(filename="2.jpg"),
            ]
        ),
    ),
    (
        "GET", "/v1.1/jobs/bulkregister/b1", {}, None,
        "Jobs", "GetBulkRegisterProgress",
        jobs_pb2.JobsGetBulkRegisterProgressRequest(batch_id="b1"),
    ),
    (
        "GET", "/v1.1/jobs/bulkregister/b1", {"pagingId": ["999"]}, None,
        "Jobs", "GetBulkRegisterProgress",
        jobs_pb2.JobsGetBulkRegisterProgressRequest(batch_id="b1", paging_id="999"),
    ),
    (
        "GET", "/v1.1/jobs/bulkregister/b1/999", {}, None,
        "Jobs", "GetBulkRegisterProgress",
        jobs_pb2.JobsGetBulkRegisterProgressRequest(batch_id="b1", paging_id="999"),
    ),
    ("GET", "/api/galleries", {}, None, "Galleries", "List", galleries_pb2.GalleriesListRequest()),
    (
        "GET", "/api/galleries/g1", {}, None,
        "Galleries", "Get", galleries_pb2.GalleriesGetRequest(id="g1"),
    ),
    (
        "POST", "/api/galleries", {},
        {"name": "Y10", "description": "Year 10", "faceMinimumQualityScore": 0.8, "size": 1000},
        "Galleries", "Create",
        galleries_pb2.GalleriesCreateRequest(
            name="Y10", description="Year 10", face_minimum_quality_score=0.8, size=1000
        ),
    ),
    (
        "PATCH", "/api/galleries/g1", {}, {"size": 2000},
        "Galleries", "Update", galleries_pb2.GalleriesUpdateRequest(id="g1", size=2000),
    ),
    (
        "DELETE", "/api/galleries/g1", {}, None,
        "Galleries", "Delete", galleries_pb2.GalleriesDeleteRequest(id="g1"),
    ),
    (
        "GET", "/api/applications", {}, None,
        "Applications", "List", applications_pb2.ApplicationsListRequest(),
    ),
    (
        "GET", "/api/applications/a1", {}, None,
        "Applications", "Get", applications_pb2.ApplicationsGetRequest(id="a1"),
    ),
    (
        "POST", "/api/applications", {},
        {"name": "HR", "description": "HR", "faceMinimumQualityScore": 0.6, "galleryId": "g1"},
        "Applications", "Create",
        applications_pb2.ApplicationsCreateRequest(
            name="HR", description="HR", face_minimum_quality_score=0.6, gallery_id="g1"
        ),
    ),
    (
        "PATCH", "/api/applications/a1", {}, {"name": "Access", "faceMinimumQualityScore": 0.7},
        "Applications", "Update",
        applications_pb2.ApplicationsUpdateRequest(
            id="a1", name="Access", face_minimum_quality_score=0.7
        ),
    ),
    (
        "DELETE", "/api/applications/a1", {}, None,
        "Applications", "Delete", applications_pb2.ApplicationsDeleteRequest(id="a1"),
    ),
]  # fmt: skip
TYPICAL = [Typical(*row) for row in _ROWS]


def _build(method: str, path: str, query: Query, body: object) -> RestCall:
    found = match(method, path)
    assert found is not None, f"{method} {path} has no route"
    route, params = found
    return route.build(params, query, body)


def _rpc(call: RestCall) -> MethodDescriptor:
    module = importlib.import_module(f"facegate.v1.{call.service.lower()}_pb2")
    grpc_module = importlib.import_module(f"facegate.v1.{call.service.lower()}_pb2_grpc")
    assert hasattr(grpc_module, f"{call.service}Stub")
    rpc: MethodDescriptor = module.DESCRIPTOR.services_by_name[call.service].methods_by_name[
        call.method
    ]
    return rpc


@pytest.mark.parametrize("typical", TYPICAL, ids=lambda row: f"{row.method} {row.path} {row.rpc}")
def test_typical_request_builds_the_call(typical: Typical) -> None:
    call = _build(typical.method, typical.path, typical.query, typical.body)
    assert (call.service, call.method) == (typical.service, typical.rpc)
    assert call.request == typical.request
    assert _rpc(call).input_type is type(call.request).DESCRIPTOR


def test_every_route_has_a_typical_request() -> None:
    covered = set()
    for typical in TYPICAL:
        found = match(typical.method, typical.path)
        assert found is not None
        covered.add((found[0].method, found[0].path))
    assert covered == {(route.method, route.path) for route in ENDPOINTS}


@pytest.mark.parametrize("typical", TYPICAL, ids=lambda row: f"{row.method} {row.path} {row.rpc}")
def test_render_takes_the_rpc_response(
    typical: Typical, populate: Callable[[Descriptor, int], Message]
) -> None:
    call = _build(typical.method, typical.path, typical.query, typical.body)
    status, rendered = call.render(populate(_rpc(call).output_type, 1))
    assert status in (200, 201, 204, 404)
    no_body = status == 204 or (call.service, call.method) in NO_BODY_200
    assert (rendered is None) == no_body
    with pytest.raises(FacegateError) as caught:
        call.render(health_pb2.HealthCheckRequest())
    assert caught.value.error_type is ErrorType.INTERNAL


NO_BODY_200 = {("Tags", "Create"), ("Tags", "Rename"), ("Tags", "Delete")}
_TAG_CALLS = [
    ("POST", None, "Create"),
    ("POST", {"newName": "b"}, "Rename"),  # the published example
    ("PUT", {"newName": "b"}, "Rename"),
    ("DELETE", None, "Delete"),
]


@pytest.mark.parametrize(("method", "body", "rpc"), _TAG_CALLS)
def test_tag_changes_answer_200_with_no_body(
    method: str, body: dict[str, str] | None, rpc: str
) -> None:
    call = _build(method, "/v1.1/tags/a", {}, body)
    assert call.method == rpc
    response = getattr(tags_pb2, f"Tags{rpc}Response")()
    assert call.render(response) == (200, None)


@pytest.mark.parametrize("body", [{}, [], "x", {"newname": "b"}])
def test_a_post_body_to_a_tag_is_a_rename_and_checked_as_one(body: object) -> None:
    with pytest.raises(FacegateError) as caught:
        _build("POST", "/v1.1/tags/a", {}, body)
    assert caught.value.error_type is ErrorType.INVALID_REQUEST


@pytest.mark.parametrize(
    ("method", "path", "response", "status"),
    [
        ("POST", "/v1.1/subjects", subjects_pb2.SubjectsRegisterResponse(id="s"), 201),
        ("POST", "/v1.1/subjects/s/events", events_pb2.EventsRegisterResponse(id="s"), 201),
        ("PUT", "/v1.1/subjects/s", subjects_pb2.SubjectsUpdateResponse(id="s"), 200),
        ("PUT", "/v1.1/subjects/s/events/e", events_pb2.EventsUpdateResponse(id="s"), 200),
    ],
)
def test_register_answers_201_and_update_200(
    method: str, path: str, response: Message, status: int
) -> None:
    assert _build(method, path, {}, {"face": IMAGE}).render(response)[0] == status


@pytest.mark.parametrize(
    ("method", "path", "response"),
    [
        ("DELETE", "/v1.1/subjects/s", subjects_pb2.SubjectsUnregisterResponse()),
        ("DELETE", "/v1.1/subjects/s/events/e", events_pb2.EventsUnregisterResponse()),
        ("DELETE", "/api/galleries/g", galleries_pb2.GalleriesDeleteResponse()),
        ("DELETE", "/api/applications/a", applications_pb2.ApplicationsDeleteResponse()),
    ],
)
def test_deletes_answer_204_with_no_body(method: str, path: str, response: Message) -> None:
    assert _build(method, path, {}, None).render(response) == (204, None)


# ------------------------------------------------------------------ the REST layer's 404s


def test_search_without_candidates_is_404() -> None:
    call = _build("POST", "/v1.1/face/search", {}, {"probe": IMAGE})
    assert call.render(face_pb2.FaceSearchResponse()) == (
        404,
        {"message": "Candidates not found."},
    )


def test_subject_list_without_rows_is_404() -> None:
    call = _build("GET", "/v1.1/subjects", {}, None)
    assert call.render(subjects_pb2.SubjectsListResponse(total=3)) == (
        404,
        {"message": "Subjects not found."},
    )


@pytest.mark.parametrize(("score", "status"), [(0, 404), (6999, 404), (7000, 200), (9999, 200)])
def test_verify_subject_below_7000_is_404(score: int, status: int) -> None:
    call = _build("POST", "/v1.1/face/verify", {}, {"id": "s1", "probe": IMAGE})
    rendered = call.render(face_pb2.FaceVerifySubjectResponse(id="s1", score=score))
    if status == 200:
        assert rendered == (200, {"id": "s1", "score": score})
    else:
        assert rendered == (404, {"message": "Subject not verified."})


@pytest.mark.parametrize("score", [0, 6999, 8200])
def test_verify_faces_always_answers_the_score(score: int) -> None:
    call = _build("POST", "/v1.1/face/verify", {}, {"face": IMAGE, "probe": IMAGE})
    assert call.render(face_pb2.FaceVerifyFacesResponse(score=score)) == (200, {"score": score})


# ------------------------------------------------------------------ verify's choice of rpc


@pytest.mark.parametrize(
    ("body", "rpc"),
    [
        ({"id": "s1", "probe": IMAGE, "face": None}, "VerifySubject"),
        ({"id": None, "face": IMAGE, "probe": IMAGE}, "VerifyFaces"),
    ],
)
def test_verify_treats_null_as_absent(body: object, rpc: str) -> None:
    assert _build("POST", "/v1.1/face/verify", {}, body).method == rpc


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"probe": IMAGE}, "id or face property must be provided."),
        (None, "id or face property must be provided."),
        ({"id": "s1", "face": IMAGE, "probe": IMAGE}, "Only one of id and face may be provided."),
        ({"id": "s1"}, "probe property must be provided."),
        ({"face": IMAGE}, "probe property must be provided."),
        ({"id": 5, "probe": IMAGE}, "id must be a string."),
        ({"face": "???", "probe": IMAGE}, "face property must be a base64 encoded image."),
        (["id"], "Request body must be a JSON object."),
    ],
)
def test_verify_errors(body: object, message: str) -> None:
    with pytest.raises(FacegateError) as caught:
        _build("POST", "/v1.1/face/verify", {}, body)
    assert caught.value.error_type is ErrorType.INVALID_REQUEST
    assert caught.value.message == message


@pytest.mark.parametrize(
    ("method", "path", "query", "body", "message"),
    [
        ("GET", "/v1.1/subjects", {"length": ["5000"]}, None, "length must be between 1 and 1000."),
        ("GET", "/v1.1/subjects", {"dir": ["DESC"]}, None, "dir must be asc or desc."),
        ("POST", "/v1.1/subjects", {}, None, "face property must be provided."),
        ("POST", "/v1.1/subjects/s/events", {}, {"face": ""}, f"face property must be {B64}."),
        ("POST", "/v1.1/face/extract", {}, {"faces": IMAGE, "limit": 50}, LIMIT_20),
        ("POST", "/v1.1/face/search", {}, {"probe": IMAGE, "threshold": 1.5}, NOT_INTEGER),
        ("PUT", "/v1.1/tags/a", {}, {"name": "b"}, "newName property must be provided."),
        ("POST", "/api/galleries", {}, 7, "Request body must be a JSON object."),
        ("PATCH", "/api/applications/a", {}, {"name": []}, "name must be a string."),
    ],
)  # fmt: skip
def test_bad_requests_are_invalid_request(
    method: str, path: str, query: Query, body: object, message: str
) -> None:
    with pytest.raises(FacegateError) as caught:
        _build(method, path, query, body)
    assert caught.value.error_type is ErrorType.INVALID_REQUEST
    assert caught.value.message == message


# ------------------------------------------------------------------ tenant views


def test_tenant_responses_show_nec_fields_and_gallery_statistics() -> None:
    application = applications_pb2.Application(
        id="a1",
        name="HR",
        description="HR System",
        api_key="ab12cd34…",
        face_minimum_quality_score=0.6,
        gallery_id="g1",
    )
    gallery = galleries_pb2.Gallery(
        id="g1",
        name="Staff",
        description="Staff",
        size=10000,
        count=3891,
        face_minimum_quality_score=0.5,
        applications=[application],
        statistics=galleries_pb2.GalleryStatistics(
            active_events=3000, threshold_fpir_1e2=8180, threshold_fpir_1e3=8410
        ),
    )
    summary = {"id": "a1", "name": "HR", "apiKey": "ab12cd34…"}
    statistics = {"activeEvents": 3000, "thresholdFpir1e2": 8180, "thresholdFpir1e3": 8410}
    listed_created = {"id": "g1", "name": "Staff", "description": "Staff", "size": 10000}
    listed = {"id": "g1", "name": "Staff", "description": "Staff", "size": 10000, "count": 3891}
    detail = {
        "id": "a1",
        "name": "HR",
        "description": "HR System",
        "apiKey": "ab12cd34…",
        "faceMinimumQualityScore": 0.6,
    }
    cases: list[tuple[str, str, object, Message, object]] = [
        ("GET", "/api/galleries", None, galleries_pb2.GalleriesListResponse(galleries=[gallery]),
         {"galleries": [listed]}),
        ("GET", "/api/galleries/g1", None, galleries_pb2.GalleriesGetResponse(gallery=gallery),
         listed | {"applications": [summary], "statistics": statistics}),
        ("POST", "/api/galleries", {"name": "Staff", "size": 1},
         galleries_pb2.GalleriesCreateResponse(gallery=gallery, api_key="full-key"),
         listed_created | {"apiKey": "full-key"}),
        ("PATCH", "/api/galleries/g1", {}, galleries_pb2.GalleriesUpdateResponse(gallery=gallery),
         {"id": "g1", "name": "Staff", "description": "Staff", "size": 10000}),
        ("GET", "/api/applications", None,
         applications_pb2.ApplicationsListResponse(applications=[application]),
         {"applications": [summary]}),
        ("GET", "/api/applications/a1", None,
         applications_pb2.ApplicationsGetResponse(application=application), detail),
        ("POST", "/api/applications", {"name": "HR", "galleryId": "g1"},
         applications_pb2.ApplicationsCreateResponse(application=application), detail),
        ("PATCH", "/api/applications/a1", {},
         applications_pb2.ApplicationsUpdateResponse(application=application), detail),
    ]  # fmt: skip
    for method, path, body, response, expected in cases:
        assert _build(method, path, {}, body).render(response) == (200, expected), path


def test_health_renders_the_status() -> None:
    call = _build("GET", "/v1.1/health", {}, None)
    response = health_pb2.HealthCheckResponse(
        status="UNAVAILABLE",
        dependencies=[
            health_pb2.DependencyHealth(name="store", status="OK"),
            health_pb2.DependencyHealth(name="matcher-1", status="UNAVAILABLE", detail="down"),
        ],
    )
    assert call.render(response) == (
        200,
        {
            "status": "UNAVAILABLE",
            "dependencies": [
                {"name": "store", "status": "OK", "detail": ""},
                {"name": "matcher-1", "status": "UNAVAILABLE", "detail": "down"},
            ],
        },
    )


# ------------------------------------------------------------------ matching


@pytest.mark.parametrize(
    "name", ["staff", "a/b", "with space", "ünïcødé", "%41", "a\nb", "x/events", "."]
)
def test_tag_names_may_hold_any_character(name: str) -> None:
    for method in ("POST", "PUT", "DELETE"):
        found = match(method, f"/v1.1/tags/{name}")
        assert found is not None
        assert found[1] == {"name": name}


def test_ids_are_one_path_segment() -> None:
    found = match("GET", "/v1.1/subjects/s1/events")
    assert found is not None
    assert found[0].path == "/v1.1/subjects/{subjectId}/events"
    assert found[1] == {"subjectId": "s1"}
    assert match("PUT", "/v1.1/subjects/s1/e1") is None
    assert match("PUT", "/v1.1/subjects/") is None
    assert match("GET", "/v1.1/subjects/") is None
    assert match("GET", "/v1.1/tags/") is None


def _methods(path: str) -> list[str]:
    return [m for m in ("GET", "POST", "PUT", "PATCH", "DELETE") if match(m, path) is not None]


def test_paths_and_their_methods() -> None:
    assert _methods("/v1.1/nothing") == []
    assert match("PATCH", "/v1.1/subjects/s1") is None
    assert _methods("/v1.1/subjects/s1") == ["PUT", "DELETE"]
    assert _methods("/v1.1/subjects") == ["GET", "POST"]
    assert _methods("/v1.1/tags/a/b") == ["POST", "PUT", "DELETE"]
    assert match("get", "/v1.1/subjects") is None  # methods are upper case, as in ASGI


def test_job_routes() -> None:
    assert _methods("/v1.1/jobs/bulkregister") == ["POST"]
    assert _methods("/v1.1/jobs/bulkregister/b1") == ["GET"]
    assert _methods("/v1.1/jobs/bulkregister/b1/7") == ["GET"]


def test_auth_follows_the_published_spec() -> None:
    auth = {(route.method, route.path): route.auth for route in ENDPOINTS}
    assert auth[("POST", "/v1.1/face/extract")] == "sigv4"
    assert auth[("POST", "/v1.1/face/verify")] == "sigv4+apikey"
    assert auth[("GET", "/v1.1/health")] == "sigv4"
    assert {auth[key] for key in auth if key[1].startswith("/api/")} == {"sigv4"}
    assert auth[("GET", "/v1.1/subjects")] == "sigv4+apikey"
    assert len(auth) == len(ENDPOINTS)
