"""The endpoints of the NEC ID v1.1 REST shim, one declaration each: its method, path and
authentication, the gRPC call of the gateway's public services it becomes (where the
request message's fields come from, how the response message renders as NEC's status
and JSON body), and what the OpenAPI document says of it. The router
(gateway/rest/routes.py), the app's stubs (gateway/rest/app.py) and the OpenAPI document
(gateway/rest/openapi.py) are all read from :data:`ENDPOINTS`.

The statuses follow the published NEC ID v1.1 text: 201 for subject and event register,
204 for unregister and tenant deletes, 200 with no body for tag create, rename and delete.
Where a gRPC answer is OK but NEC answers 404, the decision is made here: a search with no
candidates, a page of the subject list with no rows, and a subject verify scoring below
:data:`~facegate.contract.DEFAULT_THRESHOLD` (NEC's default
threshold; the published text answers "Subject not verified." below it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, cast

import grpc
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

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
    applications_pb2_grpc,
    events_pb2,
    events_pb2_grpc,
    face_pb2,
    face_pb2_grpc,
    galleries_pb2,
    galleries_pb2_grpc,
    health_pb2,
    health_pb2_grpc,
    jobs_pb2,
    jobs_pb2_grpc,
    subjects_pb2,
    subjects_pb2_grpc,
    tags_pb2,
    tags_pb2_grpc,
)
from gateway.rest import schemas
from gateway.rest.fields import Inputs, body_fields, query_fields

Auth = Literal["none", "sigv4", "sigv4+apikey"]
Render = Callable[[Message], tuple[int, object | None]]
PathParams = Mapping[str, str]
Query = Mapping[str, Sequence[str]]
Stub = Callable[[grpc.aio.Channel], Any]

SUBJECTS_NOT_FOUND = "Subjects not found."
CANDIDATES_NOT_FOUND = "Candidates not found."
SUBJECT_NOT_VERIFIED = "Subject not verified."


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
class Service:
    descriptor: ServiceDescriptor
    stub: Stub

    @property
    def name(self) -> str:
        return self.descriptor.name


@dataclass(frozen=True)
class NotFoundWhen:
    """An OK answer that NEC answers 404 with ``message``."""

    test: Callable[[Any], bool]
    message: str


@dataclass(frozen=True)
class Rpc:
    """How an endpoint calls one rpc: where the request message's fields come from, and
    how the response message renders."""

    service: Service
    name: str
    to_json: Callable[[Any], object] | None = None
    """The response message -> NEC's body; None: no body. Called only with the rpc's
    response message (:meth:`render` checks)."""
    schema: schemas.Schema | None = None
    """The OpenAPI schema of what ``to_json`` renders."""
    status: int = 200
    path_fields: Mapping[str, str] = field(default_factory=dict)
    """Path parameter -> the request field it fills."""
    body: Inputs | None = None
    query: Inputs | None = None
    not_found: NotFoundWhen | None = None

    @property
    def descriptor(self) -> MethodDescriptor:
        return self.service.descriptor.methods_by_name[self.name]

    def request(self, path: PathParams, query: Query, body: object | None) -> Message:
        fields: dict[str, object] = {
            target: path[name] for name, target in self.path_fields.items()
        }
        if self.query is not None:
            fields |= query_fields(self.query, query)
        if self.body is not None:
            fields |= body_fields(self.body, body)
        # The generated classes take their fields as keyword arguments; Message's own
        # signature (all the type stubs know of a class found by descriptor) takes none.
        message_class = cast("Callable[..., Message]", GetMessageClass(self.descriptor.input_type))
        return message_class(**fields)

    def render(self, response: Message) -> tuple[int, object | None]:
        if response.DESCRIPTOR is not self.descriptor.output_type:
            raise FacegateError(
                ErrorType.INTERNAL, f"Unexpected response message {type(response).__name__}."
            )
        if self.not_found is not None and self.not_found.test(response):
            return 404, FacegateError(ErrorType.NOT_FOUND, self.not_found.message).nec_body()
        return self.status, None if self.to_json is None else self.to_json(response)


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    """Template with {param} segments, e.g. "/v1.1/subjects/{subjectId}/events/{eventId}"."""
    auth: Auth
    summary: str
    operation_id: str
    rpcs: tuple[Rpc, ...]
    """The rpc it calls; several where ``choose`` picks one by the body."""
    not_found: str = "Not found."
    """What a 404 of this endpoint means, for the OpenAPI document."""
    choose: Callable[[object | None], str] | None = None
    """The body -> the name of the rpc it asks for; raises FacegateError(INVALID_REQUEST)."""

    def build(self, path: PathParams, query: Query, body: object | None) -> RestCall:
        """(path params, query params with repeated keys kept, parsed JSON body or None) ->
        the call; raises FacegateError(INVALID_REQUEST) for a bad request."""
        rpc = self.rpcs[0]
        if self.choose is not None:
            chosen = self.choose(body)
            rpc = next(candidate for candidate in self.rpcs if candidate.name == chosen)
        return RestCall(rpc.service.name, rpc.name, rpc.request(path, query, body), rpc.render)


def _no_rows(page: subjects_pb2.SubjectsListResponse) -> bool:
    return not page.subjects


def _no_candidates(result: face_pb2.FaceSearchResponse) -> bool:
    return not result.candidates


def _not_verified(result: face_pb2.FaceVerifySubjectResponse) -> bool:
    return result.score < DEFAULT_THRESHOLD


_SUBJECTS = Service(
    subjects_pb2.DESCRIPTOR.services_by_name["Subjects"], subjects_pb2_grpc.SubjectsStub
)
_EVENTS = Service(events_pb2.DESCRIPTOR.services_by_name["Events"], events_pb2_grpc.EventsStub)
_FACE = Service(face_pb2.DESCRIPTOR.services_by_name["Face"], face_pb2_grpc.FaceStub)
_TAGS = Service(tags_pb2.DESCRIPTOR.services_by_name["Tags"], tags_pb2_grpc.TagsStub)
_JOBS = Service(jobs_pb2.DESCRIPTOR.services_by_name["Jobs"], jobs_pb2_grpc.JobsStub)
_HEALTH = Service(health_pb2.DESCRIPTOR.services_by_name["Health"], health_pb2_grpc.HealthStub)
_GALLERIES = Service(
    galleries_pb2.DESCRIPTOR.services_by_name["Galleries"], galleries_pb2_grpc.GalleriesStub
)
_APPLICATIONS = Service(
    applications_pb2.DESCRIPTOR.services_by_name["Applications"],
    applications_pb2_grpc.ApplicationsStub,
)

_KEYED: Auth = "sigv4+apikey"
_SUBJECT = "/v1.1/subjects/{subjectId}"
_EVENT = _SUBJECT + "/events/{eventId}"
_TAG = "/v1.1/tags/{name}"
_JOBS_PATH = "/v1.1/jobs/bulkregister"
_GALLERY = "/api/galleries/{galleryId}"
_APPLICATION = "/api/applications/{applicationId}"

_SUBJECT_ID = {"subjectId": "id"}
_EVENT_IDS = {"subjectId": "subject_id", "eventId": "event_id"}
_GALLERY_ID = {"galleryId": "id"}
_APPLICATION_ID = {"applicationId": "id"}
_SUBJECT_NOT_FOUND = "Subject with id not found."
_EVENT_NOT_FOUND = "Subject with id and eventId not found."

_TAG_RENAME = Rpc(_TAGS, "Rename", path_fields={"name": "old_name"}, body=tags.RENAME_BODY)
_PROGRESS = Rpc(
    _JOBS,
    "GetBulkRegisterProgress",
    jobs.jobs_get_bulk_register_progress_response_to_json,
    schemas.JOB_PROGRESS,
    path_fields={"batchId": "batch_id"},
)

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "GET", "/v1.1/subjects", _KEYED, "List subjects", "listSubjects",
        (
            Rpc(
                _SUBJECTS, "List", subjects.subjects_list_response_to_json, schemas.SUBJECT_LIST,
                query=subjects.SUBJECTS_LIST_QUERY,
                not_found=NotFoundWhen(_no_rows, SUBJECTS_NOT_FOUND),
            ),
        ),
        not_found="No rows on this page (an empty gallery, or start beyond total).",
    ),
    Endpoint(
        "POST", "/v1.1/subjects", _KEYED, "Register subject", "registerSubject",
        (
            Rpc(
                _SUBJECTS, "Register", subjects.registration_to_json, schemas.REGISTERED,
                status=201, body=subjects.REGISTER_BODY,
            ),
        ),
    ),
    Endpoint(
        "PUT", _SUBJECT, _KEYED, "Update subject", "updateSubject",
        (
            Rpc(
                _SUBJECTS, "Update", subjects.registration_to_json, schemas.REGISTERED,
                path_fields=_SUBJECT_ID, body=subjects.REGISTER_BODY,
            ),
        ),
        not_found=_SUBJECT_NOT_FOUND,
    ),
    Endpoint(
        "DELETE", _SUBJECT, _KEYED, "Unregister subject", "unregisterSubject",
        (Rpc(_SUBJECTS, "Unregister", status=204, path_fields=_SUBJECT_ID),),
        not_found=_SUBJECT_NOT_FOUND,
    ),
    Endpoint(
        "GET", _SUBJECT + "/events", _KEYED, "List events", "listEvents",
        (
            Rpc(
                _EVENTS, "List", events.events_list_response_to_json, schemas.EVENT_LIST,
                path_fields={"subjectId": "subject_id"},
            ),
        ),
        not_found=_SUBJECT_NOT_FOUND,
    ),
    Endpoint(
        "POST", _SUBJECT + "/events", _KEYED, "Register event", "registerEvent",
        (
            Rpc(
                _EVENTS, "Register", subjects.registration_to_json, schemas.REGISTERED, status=201,
                path_fields={"subjectId": "subject_id"}, body=subjects.REGISTER_BODY,
            ),
        ),
        not_found=_SUBJECT_NOT_FOUND,
    ),
    Endpoint(
        "PUT", _EVENT, _KEYED, "Update event", "updateEvent",
        (
            Rpc(
                _EVENTS, "Update", subjects.registration_to_json, schemas.REGISTERED,
                path_fields=_EVENT_IDS, body=subjects.REGISTER_BODY,
            ),
        ),
        not_found=_EVENT_NOT_FOUND,
    ),
    Endpoint(
        "DELETE", _EVENT, _KEYED, "Unregister event", "unregisterEvent",
        (Rpc(_EVENTS, "Unregister", status=204, path_fields=_EVENT_IDS),),
        not_found=_EVENT_NOT_FOUND,
    ),
    Endpoint(
        "POST", "/v1.1/face/extract", "sigv4", "Extract faces", "extractFaces",
        (
            Rpc(
                _FACE, "Extract", face.face_extract_response_to_json, schemas.EXTRACTED,
                body=face.EXTRACT_BODY,
            ),
        ),
    ),
    Endpoint(
        "POST", "/v1.1/face/search", _KEYED, "Search subjects", "searchSubjects",
        (
            Rpc(
                _FACE, "Search", face.face_search_response_to_json, schemas.CANDIDATES,
                body=face.SEARCH_BODY,
                not_found=NotFoundWhen(_no_candidates, CANDIDATES_NOT_FOUND),
            ),
        ),
        not_found=CANDIDATES_NOT_FOUND,
    ),
    Endpoint(
        "POST", "/v1.1/face/verify", _KEYED, "Verify subject or face", "verify",
        (
            Rpc(
                _FACE, "VerifySubject",
                face.face_verify_subject_response_to_json, schemas.VERIFIED_SUBJECT,
                body=face.VERIFY_SUBJECT_BODY,
                not_found=NotFoundWhen(_not_verified, SUBJECT_NOT_VERIFIED),
            ),
            Rpc(
                _FACE, "VerifyFaces", face.face_verify_faces_response_to_json,
                schemas.VERIFIED_FACES, body=face.VERIFY_FACES_BODY,
            ),
        ),
        not_found=f"Subject not verified (score below {DEFAULT_THRESHOLD}), or subject not found.",
        choose=face.face_verify_rpc,
    ),
    Endpoint(
        "GET", "/v1.1/tags", _KEYED, "List tags", "listTags",
        (Rpc(_TAGS, "List", tags.tags_list_response_to_json, schemas.TAG_NAMES),),
    ),
    Endpoint(
        "POST", _TAG, _KEYED, "Create tag, or rename it (newName body)", "createOrRenameTag",
        (Rpc(_TAGS, "Create", path_fields={"name": "name"}), _TAG_RENAME),
        not_found="Tag not found (a rename).",
        choose=tags.tags_post_rpc,
    ),
    Endpoint(
        "PUT", _TAG, _KEYED, "Update (rename) tag", "renameTag", (_TAG_RENAME,),
        not_found="Tag not found.",
    ),
    Endpoint(
        "DELETE", _TAG, _KEYED, "Delete tag", "deleteTag",
        (Rpc(_TAGS, "Delete", path_fields={"name": "name"}),),
        not_found="Tag not found.",
    ),
    Endpoint(
        "POST", _JOBS_PATH, _KEYED, "Bulk register", "bulkRegister",
        (
            Rpc(
                _JOBS, "BulkRegister", jobs.jobs_bulk_register_response_to_json, schemas.BATCH,
                body=jobs.BULK_REGISTER_BODY,
            ),
        ),
    ),
    Endpoint(
        "GET", _JOBS_PATH + "/{batchId}", _KEYED,
        "Bulk register progress", "bulkRegisterProgress",
        (replace(_PROGRESS, query=jobs.PROGRESS_QUERY),),
        not_found="Batch not found.",
    ),
    Endpoint(
        "GET", _JOBS_PATH + "/{batchId}/{pagingId}", _KEYED,
        "Bulk register progress page", "bulkRegisterProgressPage",
        (replace(_PROGRESS, path_fields={"batchId": "batch_id", "pagingId": "paging_id"}),),
        not_found="Batch not found.",
    ),
    Endpoint(
        "GET", "/v1.1/health", "sigv4", "Service status", "health",
        (Rpc(_HEALTH, "Check", health.health_check_response_to_json, schemas.HEALTH),),
    ),
    Endpoint(
        "GET", "/api/galleries", "sigv4", "List galleries", "listGalleries",
        (
            Rpc(
                _GALLERIES, "List", galleries.galleries_list_response_to_json,
                schemas.GALLERY_LIST,
            ),
        ),
    ),
    Endpoint(
        "GET", _GALLERY, "sigv4", "Get gallery", "getGallery",
        (
            Rpc(
                _GALLERIES, "Get", galleries.galleries_get_response_to_json, schemas.GALLERY_GET,
                path_fields=_GALLERY_ID,
            ),
        ),
        not_found="Gallery not found.",
    ),
    Endpoint(
        "POST", "/api/galleries", "sigv4", "Create gallery", "createGallery",
        (
            Rpc(
                _GALLERIES, "Create", galleries.galleries_create_response_to_json,
                schemas.GALLERY_CREATE, body=galleries.GALLERY_CREATE_BODY,
            ),
        ),
    ),
    Endpoint(
        "PATCH", _GALLERY, "sigv4", "Update gallery", "updateGallery",
        (
            Rpc(
                _GALLERIES, "Update", galleries.galleries_update_response_to_json,
                schemas.GALLERY_UPDATE, path_fields=_GALLERY_ID, body=galleries.GALLERY_UPDATE_BODY,
            ),
        ),
        not_found="Gallery not found.",
    ),
    Endpoint(
        "DELETE", _GALLERY, "sigv4", "Delete gallery", "deleteGallery",
        (Rpc(_GALLERIES, "Delete", status=204, path_fields=_GALLERY_ID),),
        not_found="Gallery not found.",
    ),
    Endpoint(
        "GET", "/api/applications", "sigv4", "List applications", "listApplications",
        (
            Rpc(
                _APPLICATIONS, "List", apps.applications_list_response_to_json,
                schemas.APPLICATION_LIST,
            ),
        ),
    ),
    Endpoint(
        "GET", _APPLICATION, "sigv4", "Get application", "getApplication",
        (
            Rpc(
                _APPLICATIONS, "Get", apps.application_detail_to_json, schemas.APPLICATION_DETAIL,
                path_fields=_APPLICATION_ID,
            ),
        ),
        not_found="Application not found.",
    ),
    Endpoint(
        "POST", "/api/applications", "sigv4", "Create application", "createApplication",
        (
            Rpc(
                _APPLICATIONS, "Create", apps.application_detail_to_json,
                schemas.APPLICATION_DETAIL, body=apps.APPLICATION_CREATE_BODY,
            ),
        ),
        not_found="Gallery not found.",
    ),
    Endpoint(
        "PATCH", _APPLICATION, "sigv4", "Update application", "updateApplication",
        (
            Rpc(
                _APPLICATIONS, "Update", apps.application_detail_to_json,
                schemas.APPLICATION_DETAIL, path_fields=_APPLICATION_ID,
                body=apps.APPLICATION_UPDATE_BODY,
            ),
        ),
        not_found="Application not found.",
    ),
    Endpoint(
        "DELETE", _APPLICATION, "sigv4", "Delete application", "deleteApplication",
        (Rpc(_APPLICATIONS, "Delete", status=204, path_fields=_APPLICATION_ID),),
        not_found="Application not found.",
    ),
)  # fmt: skip

STUBS: Mapping[str, Stub] = {
    rpc.service.name: rpc.service.stub for endpoint in ENDPOINTS for rpc in endpoint.rpcs
}
"""The stub class of each service an endpoint calls, by service name."""
