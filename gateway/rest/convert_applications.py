"""JSON of the Applications service (/api/applications): the request tables and the
response renderers.

NEC's responses show an application's fields in two views (``*_KEYS`` below, read by the
OpenAPI schemas too). The API key is stored hashed, so only Create returns it whole;
elsewhere the gateway sends a hint, rendered as given.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from facegate.v1 import applications_pb2
from gateway.rest.convert_common import JsonObject, float32_number
from gateway.rest.fields import Field, Inputs

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


def application_to_json(message: applications_pb2.Application, keys: Sequence[str]) -> JsonObject:
    """The application's ``keys``; its gallery id is in none of NEC's views."""
    full: JsonObject = {
        "id": message.id,
        "name": message.name,
        "description": message.description,
        "apiKey": message.api_key,
        "faceMinimumQualityScore": float32_number(message.face_minimum_quality_score),
    }
    return {key: full[key] for key in keys}


class HoldsApplication(Protocol):
    """A Get, Create or Update answer of the Applications service."""

    @property
    def application(self) -> applications_pb2.Application: ...


def application_detail_to_json(message: HoldsApplication) -> JsonObject:
    return application_to_json(message.application, APPLICATION_DETAIL_KEYS)


def applications_list_response_to_json(
    message: applications_pb2.ApplicationsListResponse,
) -> JsonObject:
    return {
        "applications": [
            application_to_json(app, APPLICATION_SUMMARY_KEYS) for app in message.applications
        ]
    }
