"""JSON schemas of the REST shim's bodies, for the OpenAPI document (gateway/rest/openapi.py).

Request schemas are generated from the field tables the requests are read with
(gateway/rest/fields.py); response schemas are written here once and named by the endpoint
table (gateway/rest/endpoints.py), and the unit tests check that what each endpoint renders
matches its schema exactly (no extra or missing keys).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import gateway.rest.convert_applications as apps
import gateway.rest.convert_galleries as galleries
from facegate.contract import DEFAULT_THRESHOLD, MAX_SCORE
from gateway.rest.fields import INT32_MAX, INT32_MIN, Field, Inputs

Schema = dict[str, Any]


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def string() -> Schema:
    return {"type": "string"}


def _int32(minimum: int = INT32_MIN) -> Schema:
    return {"type": "integer", "format": "int32", "minimum": minimum, "maximum": INT32_MAX}


def _object(properties: Mapping[str, Schema], keys: Sequence[str] | None = None) -> Schema:
    """An object with exactly ``keys`` (all of ``properties`` by default), all required."""
    chosen = list(properties) if keys is None else list(keys)
    return {
        "type": "object",
        "required": chosen,
        "properties": {key: properties[key] for key in chosen},
        "additionalProperties": False,
    }


def _array(items: Schema, min_items: int = 0) -> Schema:
    schema: Schema = {"type": "array", "items": items}
    if min_items:
        schema["minItems"] = min_items
    return schema


# ------------------------------------------------------------------ response schemas

_INTEGER_TEXT = {"type": "string", "pattern": "^-?[0-9]+$"}
_NUMBER_TEXT = string()

_SCORE = _int32(0) | {"maximum": MAX_SCORE}
_APPLICATION: Mapping[str, Schema] = {
    "id": string(),
    "name": string(),
    "description": string(),
    "apiKey": string(),
    "faceMinimumQualityScore": {"type": "number"},
}
_GALLERY: Mapping[str, Schema] = {
    "id": string(),
    "name": string(),
    "description": string(),
    "size": _int32(),
    "count": _int32(),
    "applications": _array(_object(_APPLICATION, apps.APPLICATION_SUMMARY_KEYS)),
    "apiKey": string(),
    "statistics": _object(
        {
            "activeEvents": _int32(0),
            "thresholdFpir1e2": _SCORE,
            "thresholdFpir1e3": _SCORE,
        }
    ),
}

COMPONENTS: Mapping[str, Schema] = {
    "Box": _object(
        {
            "left": _INTEGER_TEXT,
            "top": _INTEGER_TEXT,
            "right": _INTEGER_TEXT,
            "bottom": _INTEGER_TEXT,
        }
    ),
    "Point": _object({"x": _INTEGER_TEXT, "y": _INTEGER_TEXT}),
    "FaceAttributes": _object(
        {
            "faceArea": ref("Box"),
            "headArea": ref("Box"),
            "rightEyeCenter": ref("Point"),
            "leftEyeCenter": ref("Point"),
            "frontalFaceScore": _NUMBER_TEXT,
            "faceRoll": _NUMBER_TEXT,
            "facePan": _NUMBER_TEXT,
            "faceTilt": _NUMBER_TEXT,
            "faceScore": _NUMBER_TEXT,
            "faceQualityScore": _NUMBER_TEXT,
        }
    ),
    "Registered": _object(
        {"id": string(), "eventId": string(), "attributes": ref("FaceAttributes")}
    ),
}
"""Schemas that several responses share, under #/components/schemas."""

REGISTERED = ref("Registered")
SUBJECT_LIST = _object(
    {
        "subjects": _array(
            _object(
                {
                    "id": string(),
                    "eventId": string(),
                    "status": {"type": "string", "enum": ["A", "D"]},
                    "lastUpdated": {"type": "string", "format": "date-time"},
                }
            ),
            min_items=1,
        ),
        "total": _int32(0),
    }
)
EVENT_LIST = _object({"id": string(), "events": _array(_object({"id": string()}))})
EXTRACTED = _object({"faces": _array(_object({"attributes": ref("FaceAttributes")}), 1)})
CANDIDATES = _object(
    {
        "candidates": _array(
            _object(
                {
                    "id": string(),
                    "score": _SCORE,
                    "events": _array(_object({"id": string(), "score": _SCORE})),
                }
            ),
            min_items=1,
        ),
        "attributes": ref("FaceAttributes"),
    }
)
VERIFIED_SUBJECT = _object({"id": string(), "score": _SCORE | {"minimum": DEFAULT_THRESHOLD}})
VERIFIED_FACES = _object({"score": _SCORE})
TAG_NAMES = _array(string())
BATCH = _object({"batchId": string()})
JOB_PROGRESS = _object(
    {
        "batchId": string(),
        "processed": _array(
            _object(
                {
                    "id": string(),
                    "filename": string(),
                    "attempts": _INTEGER_TEXT,
                    "eventId": string(),
                    "subjectId": string(),
                    "registerStatus": {"type": "string", "enum": ["", "Success", "Failed"]},
                    "reason": string(),
                    "status": {"type": "string", "enum": ["New", "Processed"]},
                    "attributesJson": string(),
                }
            )
        ),
        "lastEvaluatedKey": string(),
    }
)
HEALTH = _object(
    {
        "status": string() | {"description": "OK or UNAVAILABLE"},
        "dependencies": _array(
            _object(
                {
                    "name": string(),
                    "status": string() | {"description": "OK or UNAVAILABLE"},
                    "detail": string(),
                }
            )
        ),
    }
)
GALLERY_LIST = _object({"galleries": _array(_object(_GALLERY, galleries.GALLERY_LIST_KEYS))})
GALLERY_GET = _object(_GALLERY, galleries.GALLERY_GET_KEYS)
GALLERY_CREATE = _object(_GALLERY, galleries.GALLERY_CREATE_KEYS)
GALLERY_UPDATE = _object(_GALLERY, galleries.GALLERY_UPDATE_KEYS)
APPLICATION_LIST = _object(
    {"applications": _array(_object(_APPLICATION, apps.APPLICATION_SUMMARY_KEYS))}
)
APPLICATION_DETAIL = _object(_APPLICATION, apps.APPLICATION_DETAIL_KEYS)


# ------------------------------------------------------------------ request schemas


def field_schema(row: Field, *, nullable: bool = True) -> Schema:
    """The JSON schema of one input field; an optional body field may be null (read as
    absent), a query parameter may not."""
    schema: Schema
    if row.kind == "image":
        schema = {"type": "string", "format": "byte", "minLength": 1}
    elif row.kind == "string":
        schema = string()
    elif row.kind == "choice":
        schema = {"type": "string", "enum": list(row.choices)}
    elif row.kind == "strings":
        schema = _array(string())
    elif row.kind == "objects":
        if row.items is None:
            raise TypeError(f"{row.name} has no item fields")
        schema = _array(body_schema(row.items))
    elif row.kind == "integer":
        schema = _int32()
    else:
        schema = {"type": "number", "format": "float"}
    if row.minimum is not None:
        schema["minimum"] = int(row.minimum) if row.kind == "integer" else row.minimum
    if row.maximum is not None:
        schema["maximum"] = int(row.maximum) if row.kind == "integer" else row.maximum
    if row.min_length is not None:
        schema["minLength"] = row.min_length
    if row.description:
        schema["description"] = row.description
    if nullable and not row.required:
        schema["nullable"] = True
    return schema


def body_schema(inputs: Inputs) -> Schema:
    """An object with these fields; unknown properties are allowed (and ignored)."""
    schema: Schema = {
        "type": "object",
        "properties": {row.name: field_schema(row) for row in inputs.fields},
    }
    required = [row.name for row in inputs.fields if row.required]
    if required:
        schema["required"] = required
    return schema
