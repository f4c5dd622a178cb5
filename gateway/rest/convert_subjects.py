"""JSON <-> protobuf for the Subjects service (/v1.1/subjects), one function per message
and direction. Request ``*_from_json`` validate (gateway/rest/fields.py); path parameters
are passed in explicitly and are not part of the JSON a request ``*_to_json`` renders."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from facegate.v1 import subjects_pb2
from gateway.rest.convert_common import (
    JsonObject,
    enum_from_text,
    enum_text,
    face_attributes_to_json,
    int_of,
    list_of,
    optional_attributes_from_json,
    text_of,
    timestamp_from_text,
    timestamp_text,
)
from gateway.rest.fields import Field, Inputs, as_object, image_text, read_body, read_query

REGISTER_BODY = Inputs(
    (
        Field("face", "image", required=True, description="Base64 encoded image, one face."),
        Field("tags", "strings", description="Names of existing tags to give the event."),
    )
)
"""The body of subject and event register and update: {"face", "tags"}."""

SUBJECTS_LIST_QUERY = Inputs(
    (
        Field("start", "integer", minimum=0, description="Index of the first row; 0 if not set."),
        Field(
            "length",
            "integer",
            minimum=1,
            maximum=1000,
            description="Most rows to return; 1000 if not set.",
        ),
        Field(
            "dir",
            "choice",
            choices=("asc", "desc"),
            description="Sort direction of lastUpdated; asc if not set.",
        ),
    )
)

_DIRECTIONS = {
    subjects_pb2.SORT_DIRECTION_ASC: "asc",
    subjects_pb2.SORT_DIRECTION_DESC: "desc",
}
_STATUSES = {
    subjects_pb2.EVENT_STATUS_ACTIVE: "A",
    subjects_pb2.EVENT_STATUS_DELETED: "D",
}


# ------------------------------------------------------------------ List


def subjects_list_request_from_json(
    query: Mapping[str, Sequence[str]],
) -> subjects_pb2.SubjectsListRequest:
    values = read_query(SUBJECTS_LIST_QUERY, query)
    direction = values.choice("dir")
    return subjects_pb2.SubjectsListRequest(
        start=values.optional_integer("start"),
        length=values.optional_integer("length"),
        dir=(
            subjects_pb2.SORT_DIRECTION_UNSPECIFIED
            if direction is None
            else enum_from_text(_DIRECTIONS, direction, "dir")
        ),
    )


def subjects_list_request_to_json(
    message: subjects_pb2.SubjectsListRequest,
) -> dict[str, list[str]]:
    """The query parameters of the request."""
    query: dict[str, list[str]] = {}
    if message.HasField("start"):
        query["start"] = [str(message.start)]
    if message.HasField("length"):
        query["length"] = [str(message.length)]
    if message.dir != subjects_pb2.SORT_DIRECTION_UNSPECIFIED:
        query["dir"] = [enum_text(_DIRECTIONS, message.dir, "dir")]
    return query


def subject_entry_to_json(message: subjects_pb2.SubjectEntry) -> JsonObject:
    return {
        "id": message.id,
        "eventId": message.event_id,
        "status": enum_text(_STATUSES, message.status, "status"),
        "lastUpdated": timestamp_text(message.last_updated),
    }


def subject_entry_from_json(body: object) -> subjects_pb2.SubjectEntry:
    obj = as_object(body, "subjects")
    return subjects_pb2.SubjectEntry(
        id=text_of(obj, "id"),
        event_id=text_of(obj, "eventId"),
        status=enum_from_text(_STATUSES, obj.get("status"), "status"),
        last_updated=timestamp_from_text(obj.get("lastUpdated"), "lastUpdated"),
    )


def subjects_list_response_to_json(message: subjects_pb2.SubjectsListResponse) -> JsonObject:
    return {
        "subjects": [subject_entry_to_json(entry) for entry in message.subjects],
        "total": message.total,
    }


def subjects_list_response_from_json(body: object) -> subjects_pb2.SubjectsListResponse:
    obj = as_object(body, "body")
    return subjects_pb2.SubjectsListResponse(
        subjects=[subject_entry_from_json(entry) for entry in list_of(obj, "subjects")],
        total=int_of(obj, "total"),
    )


# ------------------------------------------------------------------ Register, Update


def subjects_register_request_from_json(body: object) -> subjects_pb2.SubjectsRegisterRequest:
    values = read_body(REGISTER_BODY, body)
    return subjects_pb2.SubjectsRegisterRequest(
        face=values.image("face"), tags=values.strings("tags")
    )


def subjects_register_request_to_json(message: subjects_pb2.SubjectsRegisterRequest) -> JsonObject:
    return {"face": image_text(message.face), "tags": list(message.tags)}


def subjects_register_response_to_json(
    message: subjects_pb2.SubjectsRegisterResponse,
) -> JsonObject:
    return {
        "id": message.id,
        "eventId": message.event_id,
        "attributes": face_attributes_to_json(message.attributes),
    }


def subjects_register_response_from_json(body: object) -> subjects_pb2.SubjectsRegisterResponse:
    obj = as_object(body, "body")
    return subjects_pb2.SubjectsRegisterResponse(
        id=text_of(obj, "id"),
        event_id=text_of(obj, "eventId"),
        attributes=optional_attributes_from_json(obj.get("attributes")),
    )


def subjects_update_request_from_json(
    subject_id: str, body: object
) -> subjects_pb2.SubjectsUpdateRequest:
    values = read_body(REGISTER_BODY, body)
    return subjects_pb2.SubjectsUpdateRequest(
        id=subject_id, face=values.image("face"), tags=values.strings("tags")
    )


def subjects_update_request_to_json(message: subjects_pb2.SubjectsUpdateRequest) -> JsonObject:
    return {"face": image_text(message.face), "tags": list(message.tags)}


def subjects_update_response_to_json(message: subjects_pb2.SubjectsUpdateResponse) -> JsonObject:
    return {
        "id": message.id,
        "eventId": message.event_id,
        "attributes": face_attributes_to_json(message.attributes),
    }


def subjects_update_response_from_json(body: object) -> subjects_pb2.SubjectsUpdateResponse:
    obj = as_object(body, "body")
    return subjects_pb2.SubjectsUpdateResponse(
        id=text_of(obj, "id"),
        event_id=text_of(obj, "eventId"),
        attributes=optional_attributes_from_json(obj.get("attributes")),
    )


# ------------------------------------------------------------------ Unregister


def subjects_unregister_request_from_json(
    subject_id: str,
) -> subjects_pb2.SubjectsUnregisterRequest:
    return subjects_pb2.SubjectsUnregisterRequest(id=subject_id)


def subjects_unregister_request_to_json(
    message: subjects_pb2.SubjectsUnregisterRequest,
) -> None:
    """No body: the subject id travels in the path."""


def subjects_unregister_response_to_json(
    message: subjects_pb2.SubjectsUnregisterResponse,
) -> None:
    """No body (204)."""


def subjects_unregister_response_from_json(
    body: object,
) -> subjects_pb2.SubjectsUnregisterResponse:
    return subjects_pb2.SubjectsUnregisterResponse()
