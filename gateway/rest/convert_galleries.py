"""JSON of the Galleries service (/api/galleries): the request tables and the response
renderers.

NEC's responses show a gallery's fields in several views (``*_KEYS`` below, read by the
OpenAPI schemas too). Get and Create answer with the gallery's fields at the top level,
Create adding the new application's ``apiKey``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from facegate.v1 import galleries_pb2
from gateway.rest.convert_applications import APPLICATION_SUMMARY_KEYS, application_to_json
from gateway.rest.convert_common import JsonObject
from gateway.rest.fields import Field, Inputs

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


def gallery_to_json(
    message: galleries_pb2.Gallery, keys: Sequence[str], api_key: str = ""
) -> JsonObject:
    """The gallery's ``keys``; ``apiKey`` is the new application's, which only Create
    has. The gallery's faceMinimumQualityScore is in none of NEC's views."""
    statistics = message.statistics
    full: JsonObject = {
        "id": message.id,
        "name": message.name,
        "description": message.description,
        "size": message.size,
        "count": message.count,
        "applications": [
            application_to_json(app, APPLICATION_SUMMARY_KEYS) for app in message.applications
        ],
        "statistics": {
            "activeEvents": statistics.active_events,
            "thresholdFpir1e2": statistics.threshold_fpir_1e2,
            "thresholdFpir1e3": statistics.threshold_fpir_1e3,
        },
        "apiKey": api_key,
    }
    return {key: full[key] for key in keys}


def galleries_list_response_to_json(message: galleries_pb2.GalleriesListResponse) -> JsonObject:
    return {"galleries": [gallery_to_json(g, GALLERY_LIST_KEYS) for g in message.galleries]}


def galleries_get_response_to_json(message: galleries_pb2.GalleriesGetResponse) -> JsonObject:
    return gallery_to_json(message.gallery, GALLERY_GET_KEYS)


def galleries_create_response_to_json(
    message: galleries_pb2.GalleriesCreateResponse,
) -> JsonObject:
    return gallery_to_json(message.gallery, GALLERY_CREATE_KEYS, message.api_key)


def galleries_update_response_to_json(
    message: galleries_pb2.GalleriesUpdateResponse,
) -> JsonObject:
    return gallery_to_json(message.gallery, GALLERY_UPDATE_KEYS)
