"""JSON <-> protobuf for the Galleries service (/api/galleries), one function per message
and direction.

``gallery_to_json`` renders every field so that JSON and message convert both ways without
loss; NEC's responses show fewer, and the routes pass the keys of each response (``*_KEYS``
below, read by the OpenAPI document too). Get and Create answer with the gallery's fields
at the top level, Create adding the new application's ``apiKey``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from facegate.v1 import galleries_pb2
from gateway.rest.convert_applications import (
    APPLICATION_KEYS,
    application_from_json,
    application_to_json,
)
from gateway.rest.convert_common import JsonObject, float32_number, int_of, list_of, text_of
from gateway.rest.fields import Field, Inputs, as_number, as_object, read_body

GALLERY_KEYS = (
    "id",
    "name",
    "description",
    "size",
    "count",
    "faceMinimumQualityScore",
    "applications",
    "statistics",
)
"""Every key of a gallery."""
GALLERY_LIST_KEYS = ("id", "name", "description", "size", "count")
"""A gallery in NEC's List Galleries."""
GALLERY_GET_KEYS = (*GALLERY_LIST_KEYS, "applications", "statistics")
"""NEC's Get Gallery (its applications with APPLICATION_SUMMARY_KEYS), and facegate's
search statistics (what a threshold means at the gallery's size)."""
GALLERY_CREATE_KEYS = ("id", "name", "description", "size", "apiKey")
"""NEC's Create Gallery."""
GALLERY_UPDATE_KEYS = ("id", "name", "description", "size")
"""NEC's Update Gallery."""

_SIZE = Field(
    "size", "integer", minimum=1, enforced=False, description="Capacity in events (slots)."
)
GALLERY_CREATE_BODY = Inputs(
    (
        Field("name", "string", required=True, min_length=1, description="Display name."),
        Field("description", "string", description="Free text."),
        Field(
            "faceMinimumQualityScore",
            "number",
            minimum=0.45,
            maximum=1,
            enforced=False,
            description="Lowest faceQualityScore of faces registered or searched; 0.45 if not set.",
        ),
        replace(_SIZE, required=True),
    )
)
GALLERY_UPDATE_BODY = Inputs(
    (
        Field("name", "string", min_length=1, description="New display name."),
        Field("description", "string", description="New free text."),
        _SIZE,
    )
)


def _pick(body: JsonObject, keys: Sequence[str]) -> JsonObject:
    return {key: body[key] for key in keys}


# ------------------------------------------------------------------ Gallery


def gallery_to_json(
    message: galleries_pb2.Gallery,
    keys: Sequence[str] = GALLERY_KEYS,
    application_keys: Sequence[str] = APPLICATION_KEYS,
) -> JsonObject:
    full: JsonObject = {
        "id": message.id,
        "name": message.name,
        "description": message.description,
        "size": message.size,
        "count": message.count,
        "faceMinimumQualityScore": float32_number(message.face_minimum_quality_score),
        "applications": [
            application_to_json(app, application_keys) for app in message.applications
        ],
        "statistics": gallery_statistics_to_json(message.statistics),
    }
    return _pick(full, keys)


def gallery_from_json(body: object) -> galleries_pb2.Gallery:
    obj = as_object(body, "gallery")
    quality = obj.get("faceMinimumQualityScore", 0.0)
    return galleries_pb2.Gallery(
        id=text_of(obj, "id"),
        name=text_of(obj, "name"),
        description=text_of(obj, "description"),
        size=int_of(obj, "size"),
        count=int_of(obj, "count"),
        face_minimum_quality_score=as_number(quality, "faceMinimumQualityScore"),
        applications=[application_from_json(app) for app in list_of(obj, "applications")],
        statistics=gallery_statistics_from_json(obj.get("statistics", {})),
    )


def gallery_statistics_to_json(message: galleries_pb2.GalleryStatistics) -> JsonObject:
    return {
        "activeEvents": message.active_events,
        "thresholdFpir1e2": message.threshold_fpir_1e2,
        "thresholdFpir1e3": message.threshold_fpir_1e3,
    }


def gallery_statistics_from_json(body: object) -> galleries_pb2.GalleryStatistics:
    obj = as_object(body, "statistics")
    return galleries_pb2.GalleryStatistics(
        active_events=int_of(obj, "activeEvents"),
        threshold_fpir_1e2=int_of(obj, "thresholdFpir1e2"),
        threshold_fpir_1e3=int_of(obj, "thresholdFpir1e3"),
    )


# ------------------------------------------------------------------ List, Get


def galleries_list_request_from_json() -> galleries_pb2.GalleriesListRequest:
    return galleries_pb2.GalleriesListRequest()


def galleries_list_request_to_json(message: galleries_pb2.GalleriesListRequest) -> None:
    """No body."""


def galleries_list_response_to_json(
    message: galleries_pb2.GalleriesListResponse, keys: Sequence[str] = GALLERY_KEYS
) -> JsonObject:
    return {"galleries": [gallery_to_json(gallery, keys) for gallery in message.galleries]}


def galleries_list_response_from_json(body: object) -> galleries_pb2.GalleriesListResponse:
    obj = as_object(body, "body")
    return galleries_pb2.GalleriesListResponse(
        galleries=[gallery_from_json(gallery) for gallery in list_of(obj, "galleries")]
    )


def galleries_get_request_from_json(gallery_id: str) -> galleries_pb2.GalleriesGetRequest:
    return galleries_pb2.GalleriesGetRequest(id=gallery_id)


def galleries_get_request_to_json(message: galleries_pb2.GalleriesGetRequest) -> None:
    """No body: the id travels in the path."""


def galleries_get_response_to_json(
    message: galleries_pb2.GalleriesGetResponse,
    keys: Sequence[str] = GALLERY_KEYS,
    application_keys: Sequence[str] = APPLICATION_KEYS,
) -> JsonObject:
    return gallery_to_json(message.gallery, keys, application_keys)


def galleries_get_response_from_json(body: object) -> galleries_pb2.GalleriesGetResponse:
    return galleries_pb2.GalleriesGetResponse(gallery=gallery_from_json(body))


# ------------------------------------------------------------------ Create, Update, Delete


def galleries_create_request_from_json(body: object) -> galleries_pb2.GalleriesCreateRequest:
    values = read_body(GALLERY_CREATE_BODY, body)
    return galleries_pb2.GalleriesCreateRequest(
        name=values.string("name"),
        description=values.string("description"),
        face_minimum_quality_score=values.optional_number("faceMinimumQualityScore"),
        size=values.integer("size"),
    )


def galleries_create_request_to_json(message: galleries_pb2.GalleriesCreateRequest) -> JsonObject:
    body: JsonObject = {"name": message.name, "description": message.description}
    if message.HasField("face_minimum_quality_score"):
        body["faceMinimumQualityScore"] = float32_number(message.face_minimum_quality_score)
    body["size"] = message.size
    return body


def galleries_create_response_to_json(
    message: galleries_pb2.GalleriesCreateResponse,
    keys: Sequence[str] = (*GALLERY_KEYS, "apiKey"),
) -> JsonObject:
    """The gallery's fields and the new application's ``apiKey``, at the top level."""
    full = gallery_to_json(message.gallery)
    full["apiKey"] = message.api_key
    return _pick(full, keys)


def galleries_create_response_from_json(body: object) -> galleries_pb2.GalleriesCreateResponse:
    obj = as_object(body, "body")
    return galleries_pb2.GalleriesCreateResponse(
        gallery=gallery_from_json(obj), api_key=text_of(obj, "apiKey")
    )


def galleries_update_request_from_json(
    gallery_id: str, body: object
) -> galleries_pb2.GalleriesUpdateRequest:
    values = read_body(GALLERY_UPDATE_BODY, body)
    return galleries_pb2.GalleriesUpdateRequest(
        id=gallery_id,
        name=values.optional_string("name"),
        description=values.optional_string("description"),
        size=values.optional_integer("size"),
    )


def galleries_update_request_to_json(message: galleries_pb2.GalleriesUpdateRequest) -> JsonObject:
    body: JsonObject = {}
    if message.HasField("name"):
        body["name"] = message.name
    if message.HasField("description"):
        body["description"] = message.description
    if message.HasField("size"):
        body["size"] = message.size
    return body


def galleries_update_response_to_json(
    message: galleries_pb2.GalleriesUpdateResponse, keys: Sequence[str] = GALLERY_KEYS
) -> JsonObject:
    return gallery_to_json(message.gallery, keys)


def galleries_update_response_from_json(body: object) -> galleries_pb2.GalleriesUpdateResponse:
    return galleries_pb2.GalleriesUpdateResponse(gallery=gallery_from_json(body))


def galleries_delete_request_from_json(gallery_id: str) -> galleries_pb2.GalleriesDeleteRequest:
    return galleries_pb2.GalleriesDeleteRequest(id=gallery_id)


def galleries_delete_request_to_json(message: galleries_pb2.GalleriesDeleteRequest) -> None:
    """No body: the id travels in the path."""


def galleries_delete_response_to_json(message: galleries_pb2.GalleriesDeleteResponse) -> None:
    """No body (204)."""


def galleries_delete_response_from_json(body: object) -> galleries_pb2.GalleriesDeleteResponse:
    return galleries_pb2.GalleriesDeleteResponse()
