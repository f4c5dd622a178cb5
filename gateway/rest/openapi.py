"""The OpenAPI 3.0.3 document of the REST shim: every route of gateway/rest/routes.py with
its parameters, request body, security and each status it can answer with.

Request schemas are generated from the same field tables the converters validate with
(gateway/rest/fields.py); response schemas are written here once and the unit tests check
that what the routes render matches them exactly (no extra or missing keys). Error bodies
follow facegate/errors.py: NEC's {"message", "errorCode", "errorType"} where the error type
has a code, {"message"} where it has none (403, 404, 413, 429, 503).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import gateway.rest.convert_applications as apps
import gateway.rest.convert_face as face
import gateway.rest.convert_galleries as galleries
import gateway.rest.convert_jobs as jobs
import gateway.rest.convert_subjects as subjects
import gateway.rest.convert_tags as tags
from facegate.contract import DEFAULT_THRESHOLD, MAX_SCORE
from facegate.errors import ErrorType
from gateway.rest.fields import INT32_MAX, INT32_MIN, Field, Inputs
from gateway.rest.routes import ANY_CHARACTERS, ROUTES, Route

Schema = dict[str, Any]

ERROR_STATUSES = (400, 403, 404, 413, 429, 500, 503)
"""Every route may answer with each of these: validation and NEC errors (400), signature
or API key (403), unknown ids (404), body size (413), rate (429), server (500, 503)."""


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _string() -> Schema:
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
_NUMBER_TEXT = _string()

_SCORE = _int32(0) | {"maximum": MAX_SCORE}
_APPLICATION: Mapping[str, Schema] = {
    "id": _string(),
    "name": _string(),
    "description": _string(),
    "apiKey": _string(),
    "faceMinimumQualityScore": {"type": "number"},
    "galleryId": _string(),
}
_GALLERY: Mapping[str, Schema] = {
    "id": _string(),
    "name": _string(),
    "description": _string(),
    "size": _int32(),
    "count": _int32(),
    "faceMinimumQualityScore": {"type": "number"},
    "applications": _array(_object(_APPLICATION, apps.APPLICATION_SUMMARY_KEYS)),
    "apiKey": _string(),
    "statistics": _object(
        {
            "activeEvents": _int32(0),
            "thresholdFpir1e2": _SCORE,
            "thresholdFpir1e3": _SCORE,
        }
    ),
}
_REGISTERED = _object({"id": _string(), "eventId": _string(), "attributes": _ref("FaceAttributes")})

_COMPONENTS: Mapping[str, Schema] = {
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
            "faceArea": _ref("Box"),
            "headArea": _ref("Box"),
            "rightEyeCenter": _ref("Point"),
            "leftEyeCenter": _ref("Point"),
            "frontalFaceScore": _NUMBER_TEXT,
            "faceRoll": _NUMBER_TEXT,
            "facePan": _NUMBER_TEXT,
            "faceTilt": _NUMBER_TEXT,
            "faceScore": _NUMBER_TEXT,
            "faceQualityScore": _NUMBER_TEXT,
        }
    ),
    "Registered": _REGISTERED,
}


def _error_schema(status: int) -> Schema:
    """The body of the error types that answer with ``status`` (facegate/errors.py)."""
    types = [kind for kind in ErrorType if kind.http_status == status]
    coded = [kind for kind in types if kind.error_code is not None]
    properties: Schema = {"message": _string()}
    required = ["message"]
    if coded:
        properties["errorCode"] = {"type": "integer", "enum": [k.error_code for k in coded]}
        properties["errorType"] = {"type": "string", "enum": [k.type_name for k in coded]}
        if len(coded) == len(types):
            required += ["errorCode", "errorType"]
    return {
        "type": "object",
        "required": required,
        "properties": properties,
        "additionalProperties": False,
    }


# ------------------------------------------------------------------ request schemas


def field_schema(row: Field, *, nullable: bool = True) -> Schema:
    """The JSON schema of one input field; an optional body field may be null (read as
    absent), a query parameter may not."""
    schema: Schema
    if row.kind == "image":
        schema = {"type": "string", "format": "byte", "minLength": 1}
    elif row.kind == "string":
        schema = _string()
    elif row.kind == "choice":
        schema = {"type": "string", "enum": list(row.choices)}
    elif row.kind == "strings":
        schema = _array(_string())
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


# ------------------------------------------------------------------ operations


@dataclass(frozen=True)
class _Operation:
    operation_id: str
    success: Mapping[int, Schema | None]
    """Success statuses and their body schema (None = no body)."""
    bodies: tuple[Inputs, ...] = ()
    """The request body: one table, or several of which exactly one must match."""
    query: Inputs | None = None
    not_found: str = "Not found."
    body_optional: bool = False
    """Whether the operation also takes no body at all (then it does something else)."""


_SUBJECT_LIST = _object(
    {
        "subjects": _array(
            _object(
                {
                    "id": _string(),
                    "eventId": _string(),
                    "status": {"type": "string", "enum": ["A", "D"]},
                    "lastUpdated": {"type": "string", "format": "date-time"},
                }
            ),
            min_items=1,
        ),
        "total": _int32(0),
    }
)
_JOB_PROGRESS = _object(
    {
        "batchId": _string(),
        "processed": _array(
            _object(
                {
                    "id": _string(),
                    "filename": _string(),
                    "attempts": _INTEGER_TEXT,
                    "eventId": _string(),
                    "subjectId": _string(),
                    "registerStatus": {"type": "string", "enum": ["", "Success", "Failed"]},
                    "reason": _string(),
                    "status": {"type": "string", "enum": ["New", "Processed"]},
                    "attributesJson": _string(),
                }
            )
        ),
        "lastEvaluatedKey": _string(),
    }
)
_VERIFIED_SUBJECT = _object({"id": _string(), "score": _SCORE | {"minimum": DEFAULT_THRESHOLD}})

_OPERATIONS: Mapping[tuple[str, str], _Operation] = {
    ("GET", "/v1.1/subjects"): _Operation(
        "listSubjects",
        {200: _SUBJECT_LIST},
        query=subjects.SUBJECTS_LIST_QUERY,
        not_found="No rows on this page (an empty gallery, or start beyond total).",
    ),
    ("POST", "/v1.1/subjects"): _Operation(
        "registerSubject", {201: _ref("Registered")}, (subjects.REGISTER_BODY,)
    ),
    ("PUT", "/v1.1/subjects/{subjectId}"): _Operation(
        "updateSubject",
        {200: _ref("Registered")},
        (subjects.REGISTER_BODY,),
        not_found="Subject with id not found.",
    ),
    ("DELETE", "/v1.1/subjects/{subjectId}"): _Operation(
        "unregisterSubject", {204: None}, not_found="Subject with id not found."
    ),
    ("GET", "/v1.1/subjects/{subjectId}/events"): _Operation(
        "listEvents",
        {200: _object({"id": _string(), "events": _array(_object({"id": _string()}))})},
        not_found="Subject with id not found.",
    ),
    ("POST", "/v1.1/subjects/{subjectId}/events"): _Operation(
        "registerEvent",
        {201: _ref("Registered")},
        (subjects.REGISTER_BODY,),
        not_found="Subject with id not found.",
    ),
    ("PUT", "/v1.1/subjects/{subjectId}/events/{eventId}"): _Operation(
        "updateEvent",
        {200: _ref("Registered")},
        (subjects.REGISTER_BODY,),
        not_found="Subject with id and eventId not found.",
    ),
    ("DELETE", "/v1.1/subjects/{subjectId}/events/{eventId}"): _Operation(
        "unregisterEvent", {204: None}, not_found="Subject with id and eventId not found."
    ),
    ("POST", "/v1.1/face/extract"): _Operation(
        "extractFaces",
        {200: _object({"faces": _array(_object({"attributes": _ref("FaceAttributes")}), 1)})},
        (face.EXTRACT_BODY,),
    ),
    ("POST", "/v1.1/face/search"): _Operation(
        "searchSubjects",
        {
            200: _object(
                {
                    "candidates": _array(
                        _object(
                            {
                                "id": _string(),
                                "score": _SCORE,
                                "events": _array(_object({"id": _string(), "score": _SCORE})),
                            }
                        ),
                        min_items=1,
                    ),
                    "attributes": _ref("FaceAttributes"),
                }
            )
        },
        (face.SEARCH_BODY,),
        not_found="Candidates not found.",
    ),
    ("POST", "/v1.1/face/verify"): _Operation(
        "verify",
        {200: {"oneOf": [_VERIFIED_SUBJECT, _object({"score": _SCORE})]}},
        (face.VERIFY_SUBJECT_BODY, face.VERIFY_FACES_BODY),
        not_found=f"Subject not verified (score below {DEFAULT_THRESHOLD}), or subject not found.",
    ),
    ("GET", "/v1.1/tags"): _Operation("listTags", {200: _array(_string())}),
    ("POST", "/v1.1/tags/{name}"): _Operation(
        "createOrRenameTag",
        {200: None},
        (tags.RENAME_BODY,),
        not_found="Tag not found (a rename).",
        body_optional=True,
    ),
    ("PUT", "/v1.1/tags/{name}"): _Operation(
        "renameTag", {200: None}, (tags.RENAME_BODY,), not_found="Tag not found."
    ),
    ("DELETE", "/v1.1/tags/{name}"): _Operation(
        "deleteTag", {200: None}, not_found="Tag not found."
    ),
    ("POST", "/v1.1/jobs/bulkregister"): _Operation(
        "bulkRegister", {200: _object({"batchId": _string()})}, (jobs.BULK_REGISTER_BODY,)
    ),
    ("GET", "/v1.1/jobs/bulkregister/{batchId}"): _Operation(
        "bulkRegisterProgress",
        {200: _JOB_PROGRESS},
        query=jobs.PROGRESS_QUERY,
        not_found="Batch not found.",
    ),
    ("GET", "/v1.1/jobs/bulkregister/{batchId}/{pagingId}"): _Operation(
        "bulkRegisterProgressPage", {200: _JOB_PROGRESS}, not_found="Batch not found."
    ),
    ("GET", "/v1.1/health"): _Operation(
        "health",
        {
            200: _object(
                {
                    "status": _string() | {"description": "OK or UNAVAILABLE"},
                    "dependencies": _array(
                        _object(
                            {
                                "name": _string(),
                                "status": _string() | {"description": "OK or UNAVAILABLE"},
                                "detail": _string(),
                            }
                        )
                    ),
                }
            )
        },
    ),
    ("GET", "/api/galleries"): _Operation(
        "listGalleries",
        {200: _object({"galleries": _array(_object(_GALLERY, galleries.GALLERY_LIST_KEYS))})},
    ),
    ("GET", "/api/galleries/{galleryId}"): _Operation(
        "getGallery",
        {200: _object(_GALLERY, galleries.GALLERY_GET_KEYS)},
        not_found="Gallery not found.",
    ),
    ("POST", "/api/galleries"): _Operation(
        "createGallery",
        {200: _object(_GALLERY, galleries.GALLERY_CREATE_KEYS)},
        (galleries.GALLERY_CREATE_BODY,),
    ),
    ("PATCH", "/api/galleries/{galleryId}"): _Operation(
        "updateGallery",
        {200: _object(_GALLERY, galleries.GALLERY_UPDATE_KEYS)},
        (galleries.GALLERY_UPDATE_BODY,),
        not_found="Gallery not found.",
    ),
    ("DELETE", "/api/galleries/{galleryId}"): _Operation(
        "deleteGallery", {204: None}, not_found="Gallery not found."
    ),
    ("GET", "/api/applications"): _Operation(
        "listApplications",
        {
            200: _object(
                {"applications": _array(_object(_APPLICATION, apps.APPLICATION_SUMMARY_KEYS))}
            )
        },
    ),
    ("GET", "/api/applications/{applicationId}"): _Operation(
        "getApplication",
        {200: _object(_APPLICATION, apps.APPLICATION_DETAIL_KEYS)},
        not_found="Application not found.",
    ),
    ("POST", "/api/applications"): _Operation(
        "createApplication",
        {200: _object(_APPLICATION, apps.APPLICATION_DETAIL_KEYS)},
        (apps.APPLICATION_CREATE_BODY,),
        not_found="Gallery not found.",
    ),
    ("PATCH", "/api/applications/{applicationId}"): _Operation(
        "updateApplication",
        {200: _object(_APPLICATION, apps.APPLICATION_DETAIL_KEYS)},
        (apps.APPLICATION_UPDATE_BODY,),
        not_found="Application not found.",
    ),
    ("DELETE", "/api/applications/{applicationId}"): _Operation(
        "deleteApplication", {204: None}, not_found="Application not found."
    ),
}

_SECURITY: Mapping[str, list[dict[str, list[str]]]] = {
    "none": [],
    "sigv4": [{"sigv4": []}],
    "sigv4+apikey": [{"sigv4": [], "api_key": []}],
}
_ERROR_DESCRIPTIONS = {
    400: "Invalid request or NEC error (InvalidRequest, Duplicate, NoFace, PoorQuality, "
    "MultipleFaces).",
    403: "Missing or invalid signature or API key.",
    413: "Request body too large.",
    429: "Too many requests.",
    500: "Server error or Timeout.",
    503: "Service unavailable.",
}


def _json_content(schema: Schema) -> Schema:
    return {"application/json": {"schema": schema}}


def _request_schema(bodies: Sequence[Inputs]) -> Schema:
    """One body, or several of which exactly one applies: each then requires the others'
    own properties to be absent or null, as the shim reads them (face_verify_rpc)."""
    if len(bodies) == 1:
        return body_schema(bodies[0])
    names = [{row.name for row in inputs.fields} for inputs in bodies]
    options = []
    for index, inputs in enumerate(bodies):
        schema = body_schema(inputs)
        others = set().union(*names[:index], *names[index + 1 :]) - names[index]
        for name in sorted(others):
            schema["properties"][name] = {
                "type": "string",
                "nullable": True,
                "enum": [None],
                "description": "Absent or null in this form of the request.",
            }
        options.append(schema)
    return {"oneOf": options}


def _path_schema(name: str) -> Schema:
    """Any non-empty text for a tag name; one path segment (no '/') for an id."""
    if name in ANY_CHARACTERS:
        return {"type": "string", "minLength": 1}
    return {"type": "string", "pattern": "^[^/]+$"}


def _operation(route: Route) -> Schema:
    spec = _OPERATIONS[(route.method, route.path)]
    operation: Schema = {
        "operationId": spec.operation_id,
        "summary": route.summary,
        "security": _SECURITY[route.auth],
    }
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": _path_schema(name)}
        for name in re.findall(r"\{(\w+)\}", route.path)
    ]
    if spec.query is not None:
        parameters += [
            {"name": row.name, "in": "query", "required": row.required}
            | {"schema": field_schema(row, nullable=False)}
            for row in spec.query.fields
        ]
    if parameters:
        operation["parameters"] = parameters
    if spec.bodies:
        operation["requestBody"] = {
            "required": not spec.body_optional
            and any(row.required for inputs in spec.bodies for row in inputs.fields),
            "content": _json_content(_request_schema(spec.bodies)),
        }
    responses: Schema = {}
    for status, schema in spec.success.items():
        responses[str(status)] = {"description": route.summary + ": success."}
        if schema is not None:
            responses[str(status)]["content"] = _json_content(schema)
    for status in ERROR_STATUSES:
        description = spec.not_found if status == 404 else _ERROR_DESCRIPTIONS[status]
        responses[str(status)] = {
            "description": description,
            "content": _json_content(_ref(f"Error{status}")),
        }
    operation["responses"] = responses
    return operation


def openapi_document() -> dict[str, Any]:
    """The whole document, as a JSON-ready dict (a fresh copy: callers may change it)."""
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    schemas = dict(_COMPONENTS)
    schemas.update({f"Error{status}": _error_schema(status) for status in ERROR_STATUSES})
    document: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {
            "title": "facegate NEC ID v1.1 REST API",
            "version": "1.1",
            "description": "Wire-compatible with NEC ID v1.1 (biometric and tenant "
            "management endpoints). Sign every request with AWS Signature Version 4; send "
            "the application API key as x-api-key where the operation asks for it.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "sigv4": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "AWS Signature Version 4 (service execute-api), with the "
                    "x-amz-date header.",
                    "x-amazon-apigateway-authtype": "awsSigv4",
                },
                "api_key": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "x-api-key",
                    "description": "The application API key: selects the gallery.",
                },
            },
        },
    }
    return copy.deepcopy(document)
