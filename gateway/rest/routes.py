"""The route table of the NEC ID v1.1 REST shim: for each endpoint, how an HTTP request
becomes one gRPC call of the gateway's public services (:class:`RestCall`) and how the
response message becomes NEC's status and JSON body.

The statuses follow the published NEC ID v1.1 text: 201 for subject and event register,
204 for unregister and tenant deletes, 200 with no body for tag create, rename and delete.
Where a gRPC answer is OK but NEC answers 404, the decision is made here: a search with no
candidates, a page of the subject list with no rows, and a subject verify scoring below
:data:`~facegate.contract.DEFAULT_THRESHOLD` (NEC's default
threshold; the published text answers "Subject not verified." below it).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

from google.protobuf.message import Message

import gateway.rest.convert_applications as apps
import gateway.rest.convert_events as events
import gateway.rest.convert_face as face
import gateway.rest.convert_galleries as galleries
import gateway.rest.convert_health as health
import gateway.rest.convert_jobs as jobs
import gateway.rest.convert_subjects as subjects
import gateway.rest.convert_tags as tags
from facegate.contract import DEFAULT_THRESHOLD
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

Auth = Literal["none", "sigv4", "sigv4+apikey"]
Render = Callable[[Message], tuple[int, object | None]]
PathParams = Mapping[str, str]
Query = Mapping[str, Sequence[str]]

SUBJECTS_NOT_FOUND = "Subjects not found."
CANDIDATES_NOT_FOUND = "Candidates not found."
SUBJECT_NOT_VERIFIED = "Subject not verified."

ANY_CHARACTERS = frozenset({"name"})
"""Path parameters that match any characters: tag names are chosen by users and may hold
'/' once the app has %-decoded the path. Ids are made by the server and never hold '/', so
they match one path segment."""


@dataclass(frozen=True)
class RestCall:
    """What one HTTP request becomes: one unary call of a public facegate.v1 service."""

    service: str
    """gRPC service name without package, e.g. "Subjects"."""
    method: str
    """rpc name, e.g. "Register"."""
    request: Message
    render: Render
    """Response message -> (HTTP status, JSON body or None for no body)."""


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    """Template with {param} segments, e.g. "/v1.1/subjects/{subjectId}/events/{eventId}"."""
    auth: Auth
    build: Callable[[PathParams, Query, object | None], RestCall]
    """(path params, query params with repeated keys kept, parsed JSON body or None) ->
    the call; raises FacegateError(INVALID_REQUEST) for a bad request."""
    summary: str


# ------------------------------------------------------------------ renderers

M = TypeVar("M", bound=Message)


def _expect(cls: type[M], response: Message) -> M:
    if not isinstance(response, cls):
        raise FacegateError(
            ErrorType.INTERNAL, f"Unexpected response message {type(response).__name__}."
        )
    return response


def _json(status: int, cls: type[M], to_json: Callable[[M], object]) -> Render:
    def render(response: Message) -> tuple[int, object | None]:
        return status, to_json(_expect(cls, response))

    return render


def _no_body(status: int, cls: type[M]) -> Render:
    def render(response: Message) -> tuple[int, object | None]:
        _expect(cls, response)
        return status, None

    return render


def _not_found(message: str) -> tuple[int, object | None]:
    return 404, FacegateError(ErrorType.NOT_FOUND, message).nec_body()


def _render_subjects_list(response: Message) -> tuple[int, object | None]:
    page = _expect(subjects_pb2.SubjectsListResponse, response)
    if not page.subjects:
        return _not_found(SUBJECTS_NOT_FOUND)
    return 200, subjects.subjects_list_response_to_json(page)


def _render_search(response: Message) -> tuple[int, object | None]:
    result = _expect(face_pb2.FaceSearchResponse, response)
    if not result.candidates:
        return _not_found(CANDIDATES_NOT_FOUND)
    return 200, face.face_search_response_to_json(result)


def _render_verify_subject(response: Message) -> tuple[int, object | None]:
    result = _expect(face_pb2.FaceVerifySubjectResponse, response)
    if result.score < DEFAULT_THRESHOLD:
        return _not_found(SUBJECT_NOT_VERIFIED)
    return 200, face.face_verify_subject_response_to_json(result)


def _render_galleries_list(response: Message) -> tuple[int, object | None]:
    result = _expect(galleries_pb2.GalleriesListResponse, response)
    return 200, galleries.galleries_list_response_to_json(result, galleries.GALLERY_LIST_KEYS)


def _render_gallery_get(response: Message) -> tuple[int, object | None]:
    result = _expect(galleries_pb2.GalleriesGetResponse, response)
    return 200, galleries.galleries_get_response_to_json(
        result, galleries.GALLERY_GET_KEYS, apps.APPLICATION_SUMMARY_KEYS
    )


def _render_gallery_create(response: Message) -> tuple[int, object | None]:
    result = _expect(galleries_pb2.GalleriesCreateResponse, response)
    return 200, galleries.galleries_create_response_to_json(result, galleries.GALLERY_CREATE_KEYS)


def _render_gallery_update(response: Message) -> tuple[int, object | None]:
    result = _expect(galleries_pb2.GalleriesUpdateResponse, response)
    return 200, galleries.galleries_update_response_to_json(result, galleries.GALLERY_UPDATE_KEYS)


def _render_applications_list(response: Message) -> tuple[int, object | None]:
    result = _expect(applications_pb2.ApplicationsListResponse, response)
    return 200, apps.applications_list_response_to_json(result, apps.APPLICATION_SUMMARY_KEYS)


def _render_application_get(response: Message) -> tuple[int, object | None]:
    result = _expect(applications_pb2.ApplicationsGetResponse, response)
    return 200, apps.applications_get_response_to_json(result, apps.APPLICATION_DETAIL_KEYS)


def _render_application_create(response: Message) -> tuple[int, object | None]:
    result = _expect(applications_pb2.ApplicationsCreateResponse, response)
    return 200, apps.applications_create_response_to_json(result, apps.APPLICATION_DETAIL_KEYS)


def _render_application_update(response: Message) -> tuple[int, object | None]:
    result = _expect(applications_pb2.ApplicationsUpdateResponse, response)
    return 200, apps.applications_update_response_to_json(result, apps.APPLICATION_DETAIL_KEYS)


_SUBJECTS_REGISTER = _json(
    201, subjects_pb2.SubjectsRegisterResponse, subjects.subjects_register_response_to_json
)
_SUBJECTS_UPDATE = _json(
    200, subjects_pb2.SubjectsUpdateResponse, subjects.subjects_update_response_to_json
)
_SUBJECTS_UNREGISTER = _no_body(204, subjects_pb2.SubjectsUnregisterResponse)
_EVENTS_LIST = _json(200, events_pb2.EventsListResponse, events.events_list_response_to_json)
_EVENTS_REGISTER = _json(
    201, events_pb2.EventsRegisterResponse, events.events_register_response_to_json
)
_EVENTS_UPDATE = _json(200, events_pb2.EventsUpdateResponse, events.events_update_response_to_json)
_EVENTS_UNREGISTER = _no_body(204, events_pb2.EventsUnregisterResponse)
_EXTRACT = _json(200, face_pb2.FaceExtractResponse, face.face_extract_response_to_json)
_VERIFY_FACES = _json(
    200, face_pb2.FaceVerifyFacesResponse, face.face_verify_faces_response_to_json
)
_TAGS_LIST = _json(200, tags_pb2.TagsListResponse, tags.tags_list_response_to_json)
_TAGS_CREATE = _no_body(200, tags_pb2.TagsCreateResponse)
_TAGS_RENAME = _no_body(200, tags_pb2.TagsRenameResponse)
_TAGS_DELETE = _no_body(200, tags_pb2.TagsDeleteResponse)
_HEALTH = _json(200, health_pb2.HealthCheckResponse, health.health_check_response_to_json)
_JOBS_BULK_REGISTER = _json(
    200, jobs_pb2.JobsBulkRegisterResponse, jobs.jobs_bulk_register_response_to_json
)
_JOBS_PROGRESS = _json(
    200,
    jobs_pb2.JobsGetBulkRegisterProgressResponse,
    jobs.jobs_get_bulk_register_progress_response_to_json,
)
_GALLERY_DELETE = _no_body(204, galleries_pb2.GalleriesDeleteResponse)
_APPLICATION_DELETE = _no_body(204, applications_pb2.ApplicationsDeleteResponse)


# ------------------------------------------------------------------ builders


def _subjects_list(path: PathParams, query: Query, body: object | None) -> RestCall:
    request = subjects.subjects_list_request_from_json(query)
    return RestCall("Subjects", "List", request, _render_subjects_list)


def _subjects_register(path: PathParams, query: Query, body: object | None) -> RestCall:
    request = subjects.subjects_register_request_from_json(body)
    return RestCall("Subjects", "Register", request, _SUBJECTS_REGISTER)


def _subjects_update(path: PathParams, query: Query, body: object | None) -> RestCall:
    request = subjects.subjects_update_request_from_json(path["subjectId"], body)
    return RestCall("Subjects", "Update", request, _SUBJECTS_UPDATE)


def _subjects_unregister(path: PathParams, query: Query, body: object | None) -> RestCall:
    request = subjects.subjects_unregister_request_from_json(path["subjectId"])
    return RestCall("Subjects", "Unregister", request, _SUBJECTS_UNREGISTER)


def _events_list(path: PathParams, query: Query, body: object | None) -> RestCall:
    request = events.events_list_request_from_json(path["subjectId"])
    return RestCall("Events", "List", request, _EVENTS_LIST)


def _events_register(path: PathParams, query: Query, body: object | None) -> RestCall:
    request = events.events_register_request_from_json(path["subjectId"], body)
    return RestCall("Events", "Register", request, _EVENTS_REGISTER)


def _events_update(path: PathParams, query: Query, body: object | None) -> RestCall:
    request = events.events_update_request_from_json(path["subjectId"], path["eventId"], body)
    return RestCall("Events", "Update", request, _EVENTS_UPDATE)


def _events_unregister(path: PathParams, query: Query, body: object | None) -> RestCall:
    request = events.events_unregister_request_from_json(path["subjectId"], path["eventId"])
    return RestCall("Events", "Unregister", request, _EVENTS_UNREGISTER)


def _face_extract(path: PathParams, query: Query, body: object | None) -> RestCall:
    return RestCall("Face", "Extract", face.face_extract_request_from_json(body), _EXTRACT)


def _face_search(path: PathParams, query: Query, body: object | None) -> RestCall:
    return RestCall("Face", "Search", face.face_search_request_from_json(body), _render_search)


def _face_verify(path: PathParams, query: Query, body: object | None) -> RestCall:
    if face.face_verify_rpc(body) == "VerifySubject":
        request: Message = face.face_verify_subject_request_from_json(body)
        return RestCall("Face", "VerifySubject", request, _render_verify_subject)
    request = face.face_verify_faces_request_from_json(body)
    return RestCall("Face", "VerifyFaces", request, _VERIFY_FACES)


def _tags_list(path: PathParams, query: Query, body: object | None) -> RestCall:
    return RestCall("Tags", "List", tags.tags_list_request_from_json(), _TAGS_LIST)


def _tags_create(path: PathParams, query: Query, body: object | None) -> RestCall:
    if tags.tags_post_rpc(body) == "Rename":
        return _tags_rename(path, query, body)
    request = tags.tags_create_request_from_json(path["name"])
    return RestCall("Tags", "Create", request, _TAGS_CREATE)


def _tags_rename(path: PathParams, query: Query, body: object | None) -> RestCall:
    request = tags.tags_rename_request_from_json(path["name"], body)
    return RestCall("Tags", "Rename", request, _TAGS_RENAME)


def _tags_delete(path: PathParams, query: Query, body: object | None) -> RestCall:
    request = tags.tags_delete_request_from_json(path["name"])
    return RestCall("Tags", "Delete", request, _TAGS_DELETE)


def _jobs_bulk_register(path: PathParams, query: Query, body: object | None) -> RestCall:
    request = jobs.jobs_bulk_register_request_from_json(body)
    return RestCall("Jobs", "BulkRegister", request, _JOBS_BULK_REGISTER)


def _jobs_progress(path: PathParams, query: Query, body: object | None) -> RestCall:
    request = jobs.jobs_get_bulk_register_progress_request_from_json(
        path["batchId"], path.get("pagingId", ""), query
    )
    return RestCall("Jobs", "GetBulkRegisterProgress", request, _JOBS_PROGRESS)


def _health(path: PathParams, query: Query, body: object | None) -> RestCall:
    return RestCall("Health", "Check", health.health_check_request_from_json(), _HEALTH)


def _galleries_list(path: PathParams, query: Query, body: object | None) -> RestCall:
    request = galleries.galleries_list_request_from_json()
    return RestCall("Galleries", "List", request, _render_galleries_list)


def _galleries_get(path: PathParams, query: Query, body: object | None) -> RestCall:
    request = galleries.galleries_get_request_from_json(path["galleryId"])
    return RestCall("Galleries", "Get", request, _render_gallery_get)


def _galleries_create(path: PathParams, query: Query, body: object | None) -> RestCall:
    request = galleries.galleries_create_request_from_json(body)
    return RestCall("Galleries", "Create", request, _render_gallery_create)


def _galleries_update(path: PathParams, query: Query, body: object | None) -> RestCall:
    request = galleries.galleries_update_request_from_json(path["galleryId"], body)
    return RestCall("Galleries", "Update", request, _render_gallery_update)


def _galleries_delete(path: PathParams, query: Query, body: object | None) -> RestCall:
    request = galleries.galleries_delete_request_from_json(path["galleryId"])
    return RestCall("Galleries", "Delete", request, _GALLERY_DELETE)


def _applications_list(path: PathParams, query: Query, body: object | None) -> RestCall:
    request = apps.applications_list_request_from_json()
    return RestCall("Applications", "List", request, _render_applications_list)


def _applications_get(path: PathParams, query: Query, body: object | None) -> RestCall:
    request = apps.applications_get_request_from_json(path["applicationId"])
    return RestCall("Applications", "Get", request, _render_application_get)


def _applications_create(path: PathParams, query: Query, body: object | None) -> RestCall:
    request = apps.applications_create_request_from_json(body)
    return RestCall("Applications", "Create", request, _render_application_create)


def _applications_update(path: PathParams, query: Query, body: object | None) -> RestCall:
    request = apps.applications_update_request_from_json(path["applicationId"], body)
    return RestCall("Applications", "Update", request, _render_application_update)


def _applications_delete(path: PathParams, query: Query, body: object | None) -> RestCall:
    request = apps.applications_delete_request_from_json(path["applicationId"])
    return RestCall("Applications", "Delete", request, _APPLICATION_DELETE)


_KEYED: Auth = "sigv4+apikey"
_SUBJECT = "/v1.1/subjects/{subjectId}"
_EVENTS = "/v1.1/subjects/{subjectId}/events"
_EVENT = "/v1.1/subjects/{subjectId}/events/{eventId}"
_TAG = "/v1.1/tags/{name}"
_JOBS = "/v1.1/jobs/bulkregister"
_JOB = _JOBS + "/{batchId}"
_GALLERY = "/api/galleries/{galleryId}"
_APPLICATION = "/api/applications/{applicationId}"

ROUTES: tuple[Route, ...] = (
    Route("GET", "/v1.1/subjects", _KEYED, _subjects_list, "List subjects"),
    Route("POST", "/v1.1/subjects", _KEYED, _subjects_register, "Register subject"),
    Route("PUT", _SUBJECT, _KEYED, _subjects_update, "Update subject"),
    Route("DELETE", _SUBJECT, _KEYED, _subjects_unregister, "Unregister subject"),
    Route("GET", _EVENTS, _KEYED, _events_list, "List events"),
    Route("POST", _EVENTS, _KEYED, _events_register, "Register event"),
    Route("PUT", _EVENT, _KEYED, _events_update, "Update event"),
    Route("DELETE", _EVENT, _KEYED, _events_unregister, "Unregister event"),
    Route("POST", "/v1.1/face/extract", "sigv4", _face_extract, "Extract faces"),
    Route("POST", "/v1.1/face/search", _KEYED, _face_search, "Search subjects"),
    Route("POST", "/v1.1/face/verify", _KEYED, _face_verify, "Verify subject or face"),
    Route("GET", "/v1.1/tags", _KEYED, _tags_list, "List tags"),
    Route("POST", _TAG, _KEYED, _tags_create, "Create tag, or rename it (newName body)"),
    Route("PUT", _TAG, _KEYED, _tags_rename, "Update (rename) tag"),
    Route("DELETE", _TAG, _KEYED, _tags_delete, "Delete tag"),
    Route("POST", _JOBS, _KEYED, _jobs_bulk_register, "Bulk register"),
    Route("GET", _JOB, _KEYED, _jobs_progress, "Bulk register progress"),
    Route("GET", _JOB + "/{pagingId}", _KEYED, _jobs_progress, "Bulk register progress page"),
    Route("GET", "/v1.1/health", "sigv4", _health, "Service status"),
    Route("GET", "/api/galleries", "sigv4", _galleries_list, "List galleries"),
    Route("GET", _GALLERY, "sigv4", _galleries_get, "Get gallery"),
    Route("POST", "/api/galleries", "sigv4", _galleries_create, "Create gallery"),
    Route("PATCH", _GALLERY, "sigv4", _galleries_update, "Update gallery"),
    Route("DELETE", _GALLERY, "sigv4", _galleries_delete, "Delete gallery"),
    Route("GET", "/api/applications", "sigv4", _applications_list, "List applications"),
    Route("GET", _APPLICATION, "sigv4", _applications_get, "Get application"),
    Route("POST", "/api/applications", "sigv4", _applications_create, "Create application"),
    Route("PATCH", _APPLICATION, "sigv4", _applications_update, "Update application"),
    Route("DELETE", _APPLICATION, "sigv4", _applications_delete, "Delete application"),
)


def _pattern(path: str) -> re.Pattern[str]:
    parts = re.split(r"\{(\w+)\}", path)
    regex = "".join(
        re.escape(part)
        if index % 2 == 0
        else f"(?P<{part}>{'.+' if part in ANY_CHARACTERS else '[^/]+'})"
        for index, part in enumerate(parts)
    )
    return re.compile(regex, re.DOTALL)


_PATTERNS = tuple((route, _pattern(route.path)) for route in ROUTES)


def match(method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    """The route of ``method`` and ``path`` (already %-decoded) and its path parameters,
    or None; :func:`allowed_methods` tells an unknown path from a wrong method."""
    for route, pattern in _PATTERNS:
        if route.method == method:
            found = pattern.fullmatch(path)
            if found is not None:
                return route, found.groupdict()
    return None


def allowed_methods(path: str) -> list[str]:
    """The methods that have a route for ``path``, in table order; empty for an unknown
    path."""
    methods: list[str] = []
    for route, pattern in _PATTERNS:
        if route.method not in methods and pattern.fullmatch(path) is not None:
            methods.append(route.method)
    return methods
