"""JSON <-> protobuf for the Events service (/v1.1/subjects/{subjectId}/events), one
function per message and direction. Path parameters are passed in explicitly and are not
part of the JSON a request ``*_to_json`` renders."""

from __future__ import annotations

from facegate.v1 import events_pb2
from gateway.rest.convert_common import (
    JsonObject,
    face_attributes_to_json,
    list_of,
    optional_attributes_from_json,
    text_of,
)
from gateway.rest.convert_subjects import REGISTER_BODY
from gateway.rest.fields import as_object, image_text, read_body

# ------------------------------------------------------------------ List


def events_list_request_from_json(subject_id: str) -> events_pb2.EventsListRequest:
    return events_pb2.EventsListRequest(subject_id=subject_id)


def events_list_request_to_json(message: events_pb2.EventsListRequest) -> None:
    """No body: the subject id travels in the path."""


def event_entry_to_json(message: events_pb2.EventEntry) -> JsonObject:
    return {"id": message.id}


def event_entry_from_json(body: object) -> events_pb2.EventEntry:
    return events_pb2.EventEntry(id=text_of(as_object(body, "events"), "id"))


def events_list_response_to_json(message: events_pb2.EventsListResponse) -> JsonObject:
    return {"id": message.id, "events": [event_entry_to_json(event) for event in message.events]}


def events_list_response_from_json(body: object) -> events_pb2.EventsListResponse:
    obj = as_object(body, "body")
    return events_pb2.EventsListResponse(
        id=text_of(obj, "id"),
        events=[event_entry_from_json(event) for event in list_of(obj, "events")],
    )


# ------------------------------------------------------------------ Register, Update


def events_register_request_from_json(
    subject_id: str, body: object
) -> events_pb2.EventsRegisterRequest:
    values = read_body(REGISTER_BODY, body)
    return events_pb2.EventsRegisterRequest(
        subject_id=subject_id, face=values.image("face"), tags=values.strings("tags")
    )


def events_register_request_to_json(message: events_pb2.EventsRegisterRequest) -> JsonObject:
    return {"face": image_text(message.face), "tags": list(message.tags)}


def events_register_response_to_json(message: events_pb2.EventsRegisterResponse) -> JsonObject:
    return {
        "id": message.id,
        "eventId": message.event_id,
        "attributes": face_attributes_to_json(message.attributes),
    }


def events_register_response_from_json(body: object) -> events_pb2.EventsRegisterResponse:
    obj = as_object(body, "body")
    return events_pb2.EventsRegisterResponse(
        id=text_of(obj, "id"),
        event_id=text_of(obj, "eventId"),
        attributes=optional_attributes_from_json(obj.get("attributes")),
    )


def events_update_request_from_json(
    subject_id: str, event_id: str, body: object
) -> events_pb2.EventsUpdateRequest:
    values = read_body(REGISTER_BODY, body)
    return events_pb2.EventsUpdateRequest(
        subject_id=subject_id,
        event_id=event_id,
        face=values.image("face"),
        tags=values.strings("tags"),
    )


def events_update_request_to_json(message: events_pb2.EventsUpdateRequest) -> JsonObject:
    return {"face": image_text(message.face), "tags": list(message.tags)}


def events_update_response_to_json(message: events_pb2.EventsUpdateResponse) -> JsonObject:
    return {
        "id": message.id,
        "eventId": message.event_id,
        "attributes": face_attributes_to_json(message.attributes),
    }


def events_update_response_from_json(body: object) -> events_pb2.EventsUpdateResponse:
    obj = as_object(body, "body")
    return events_pb2.EventsUpdateResponse(
        id=text_of(obj, "id"),
        event_id=text_of(obj, "eventId"),
        attributes=optional_attributes_from_json(obj.get("attributes")),
    )


# ------------------------------------------------------------------ Unregister


def events_unregister_request_from_json(
    subject_id: str, event_id: str
) -> events_pb2.EventsUnregisterRequest:
    return events_pb2.EventsUnregisterRequest(subject_id=subject_id, event_id=event_id)


def events_unregister_request_to_json(message: events_pb2.EventsUnregisterRequest) -> None:
    """No body: the ids travel in the path."""


def events_unregister_response_to_json(message: events_pb2.EventsUnregisterResponse) -> None:
    """No body (204)."""


def events_unregister_response_from_json(body: object) -> events_pb2.EventsUnregisterResponse:
    return events_pb2.EventsUnregisterResponse()
