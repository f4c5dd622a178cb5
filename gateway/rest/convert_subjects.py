"""JSON of the Subjects service (/v1.1/subjects): the request tables and the response
renderers; the register/update answer is shared with the Events service."""

from __future__ import annotations

from typing import Protocol

from facegate.contract import MAX_LIST_PAGE
from facegate.v1 import common_pb2, subjects_pb2
from gateway.rest.convert_common import (
    JsonObject,
    enum_text,
    face_attributes_to_json,
    timestamp_text,
)
from gateway.rest.fields import Field, Inputs

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
            maximum=MAX_LIST_PAGE,
            description=f"Most rows to return; {MAX_LIST_PAGE} if not set.",
        ),
        Field(
            "dir",
            "choice",
            choices={
                "asc": subjects_pb2.SORT_DIRECTION_ASC,
                "desc": subjects_pb2.SORT_DIRECTION_DESC,
            },
            description="Sort direction of lastUpdated; asc if not set.",
        ),
    )
)

_STATUSES = {
    subjects_pb2.EVENT_STATUS_ACTIVE: "A",
    subjects_pb2.EVENT_STATUS_DELETED: "D",
}


class Registration(Protocol):
    """A register or update answer of the Subjects or Events service."""

    @property
    def id(self) -> str: ...
    @property
    def event_id(self) -> str: ...
    @property
    def attributes(self) -> common_pb2.FaceAttributes: ...


def registration_to_json(message: Registration) -> JsonObject:
    return {
        "id": message.id,
        "eventId": message.event_id,
        "attributes": face_attributes_to_json(message.attributes),
    }


def subject_entry_to_json(message: subjects_pb2.SubjectEntry) -> JsonObject:
    return {
        "id": message.id,
        "eventId": message.event_id,
        "status": enum_text(_STATUSES, message.status, "status"),
        "lastUpdated": timestamp_text(message.last_updated),
    }


def subjects_list_response_to_json(message: subjects_pb2.SubjectsListResponse) -> JsonObject:
    return {
        "subjects": [subject_entry_to_json(entry) for entry in message.subjects],
        "total": message.total,
    }
