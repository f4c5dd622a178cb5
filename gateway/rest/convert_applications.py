"""JSON <-> protobuf for the Applications service (/api/applications), one function per
message and direction.

``application_to_json`` renders every field, so that JSON and message convert both ways
without loss; NEC's responses show fewer, and the routes pass the keys of each response
(``*_KEYS`` below, read by the OpenAPI document too). The API key is stored hashed, so
only Create returns it whole; elsewhere the gateway sends a hint, rendered as given.
"""

from __future__ import annotations

from collections.abc import Sequence

from facegate.v1 import applications_pb2
from gateway.rest.convert_common import JsonObject, float32_number, list_of, text_of
from gateway.rest.fields import Field, Inputs, as_number, as_object, read_body

APPLICATION_KEYS = ("id", "name", "description", "apiKey", "faceMinimumQualityScore", "galleryId")
"""Every key of an application."""
APPLICATION_SUMMARY_KEYS = ("id", "name", "apiKey")
"""An application in NEC's lists (List Applications, Get Gallery)."""
APPLICATION_DETAIL_KEYS = ("id", "name", "description", "apiKey", "faceMinimumQualityScore")
"""An application in NEC's Get, Create and Update responses."""

_QUALITY = Field(
    "faceMinimumQualityScore",
    "number",
    minimum=0.45,
    maximum=1,
    enforced=False,
    description="Lowest faceQualityScore of faces registered or searched.",
)
APPLICATION_CREATE_BODY = Inputs(
    (
        Field("name", "string", required=True, min_length=1, description="Display name."),
        Field("description", "string", description="Free text."),
        _QUALITY,
        Field(
            "galleryId",
            "string",
            required=True,
            min_length=1,
            description="Id of the gallery to work on.",
        ),
    )
)
APPLICATION_UPDATE_BODY = Inputs(
    (
        Field("name", "string", min_length=1, description="New display name."),
        Field("description", "string", description="New free text."),
        _QUALITY,
    )
)


def _pick(body: JsonObject, keys: Sequence[str]) -> JsonObject:
    return {key: body[key] for key in keys}


def _quality(obj: JsonObject) -> float:
    return as_number(obj.get("faceMinimumQualityScore", 0.0), "faceMinimumQualityScore")


# ------------------------------------------------------------------ Application


def application_to_json(
    message: applications_pb2.Application, keys: Sequence[str] = APPLICATION_KEYS
) -> JsonObject:
    full: JsonObject = {
        "id": message.id,
        "name": message.name,
        "description": message.description,
        "apiKey": message.api_key,
        "faceMinimumQualityScore": float32_number(message.face_minimum_quality_score),
        "galleryId": message.gallery_id,
    }
    return _pick(full, keys)


def application_from_json(body: object) -> applications_pb2.Application:
    obj = as_object(body, "application")
    return applications_pb2.Application(
        id=text_of(obj, "id"),
        name=text_of(obj, "name"),
        description=text_of(obj, "description"),
        api_key=text_of(obj, "apiKey"),
        face_minimum_quality_score=_quality(obj),
        gallery_id=text_of(obj, "galleryId"),
    )


# ------------------------------------------------------------------ List, Get


def applications_list_request_from_json() -> applications_pb2.ApplicationsListRequest:
    return applications_pb2.ApplicationsListRequest()


def applications_list_request_to_json(message: applications_pb2.ApplicationsListRequest) -> None:
    """No body."""


def applications_list_response_to_json(
    message: applications_pb2.ApplicationsListResponse, keys: Sequence[str] = APPLICATION_KEYS
) -> JsonObject:
    return {"applications": [application_to_json(app, keys) for app in message.applications]}


def applications_list_response_from_json(
    body: object,
) -> applications_pb2.ApplicationsListResponse:
    obj = as_object(body, "body")
    return applications_pb2.ApplicationsListResponse(
        applications=[application_from_json(app) for app in list_of(obj, "applications")]
    )


def applications_get_request_from_json(
    application_id: str,
) -> applications_pb2.ApplicationsGetRequest:
    return applications_pb2.ApplicationsGetRequest(id=application_id)


def applications_get_request_to_json(message: applications_pb2.ApplicationsGetRequest) -> None:
    """No body: the id travels in the path."""


def applications_get_response_to_json(
    message: applications_pb2.ApplicationsGetResponse, keys: Sequence[str] = APPLICATION_KEYS
) -> JsonObject:
    return application_to_json(message.application, keys)


def applications_get_response_from_json(body: object) -> applications_pb2.ApplicationsGetResponse:
    return applications_pb2.ApplicationsGetResponse(application=application_from_json(body))


# ------------------------------------------------------------------ Create, Update, Delete


def applications_create_request_from_json(
    body: object,
) -> applications_pb2.ApplicationsCreateRequest:
    values = read_body(APPLICATION_CREATE_BODY, body)
    return applications_pb2.ApplicationsCreateRequest(
        name=values.string("name"),
        description=values.string("description"),
        face_minimum_quality_score=values.optional_number("faceMinimumQualityScore"),
        gallery_id=values.string("galleryId"),
    )


def applications_create_request_to_json(
    message: applications_pb2.ApplicationsCreateRequest,
) -> JsonObject:
    body: JsonObject = {"name": message.name, "description": message.description}
    if message.HasField("face_minimum_quality_score"):
        body["faceMinimumQualityScore"] = float32_number(message.face_minimum_quality_score)
    body["galleryId"] = message.gallery_id
    return body


def applications_create_response_to_json(
    message: applications_pb2.ApplicationsCreateResponse, keys: Sequence[str] = APPLICATION_KEYS
) -> JsonObject:
    return application_to_json(message.application, keys)


def applications_create_response_from_json(
    body: object,
) -> applications_pb2.ApplicationsCreateResponse:
    return applications_pb2.ApplicationsCreateResponse(application=application_from_json(body))


def applications_update_request_from_json(
    application_id: str, body: object
) -> applications_pb2.ApplicationsUpdateRequest:
    values = read_body(APPLICATION_UPDATE_BODY, body)
    return applications_pb2.ApplicationsUpdateRequest(
        id=application_id,
        name=values.optional_string("name"),
        description=values.optional_string("description"),
        face_minimum_quality_score=values.optional_number("faceMinimumQualityScore"),
    )


def applications_update_request_to_json(
    message: applications_pb2.ApplicationsUpdateRequest,
) -> JsonObject:
    body: JsonObject = {}
    if message.HasField("name"):
        body["name"] = message.name
    if message.HasField("description"):
        body["description"] = message.description
    if message.HasField("face_minimum_quality_score"):
        body["faceMinimumQualityScore"] = float32_number(message.face_minimum_quality_score)
    return body


def applications_update_response_to_json(
    message: applications_pb2.ApplicationsUpdateResponse, keys: Sequence[str] = APPLICATION_KEYS
) -> JsonObject:
    return application_to_json(message.application, keys)


def applications_update_response_from_json(
    body: object,
) -> applications_pb2.ApplicationsUpdateResponse:
    return applications_pb2.ApplicationsUpdateResponse(application=application_from_json(body))


def applications_delete_request_from_json(
    application_id: str,
) -> applications_pb2.ApplicationsDeleteRequest:
    return applications_pb2.ApplicationsDeleteRequest(id=application_id)


def applications_delete_request_to_json(
    message: applications_pb2.ApplicationsDeleteRequest,
) -> None:
    """No body: the id travels in the path."""


def applications_delete_response_to_json(
    message: applications_pb2.ApplicationsDeleteResponse,
) -> None:
    """No body (204)."""


def applications_delete_response_from_json(
    body: object,
) -> applications_pb2.ApplicationsDeleteResponse:
    return applications_pb2.ApplicationsDeleteResponse()
