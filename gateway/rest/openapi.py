"""The OpenAPI 3.0.3 document of the REST shim, read from the endpoint table
(gateway/rest/endpoints.py): every endpoint with its parameters, request body, security and
each status it can answer with.

Body schemas come from gateway/rest/schemas.py. Error bodies follow facegate/errors.py:
NEC's {"message", "errorCode", "errorType"} where the error type has a code, {"message"}
where it has none (403, 404, 413, 429, 503).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from typing import Any

from facegate.errors import ErrorType
from gateway.rest.endpoints import ENDPOINTS, Endpoint
from gateway.rest.fields import Inputs
from gateway.rest.routes import ANY_CHARACTERS
from gateway.rest.schemas import COMPONENTS, Schema, body_schema, field_schema, ref, string

ERROR_STATUSES = (400, 403, 404, 413, 429, 500, 503)
"""Every endpoint may answer with each of these: validation and NEC errors (400), signature
or API key (403), unknown ids (404), body size (413), rate (429), server (500, 503)."""


def _error_schema(status: int) -> Schema:
    """The body of the error types that answer with ``status`` (facegate/errors.py)."""
    types = [kind for kind in ErrorType if kind.http_status == status]
    coded = [kind for kind in types if kind.error_code is not None]
    properties: Schema = {"message": string()}
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


def _success(endpoint: Endpoint) -> dict[int, Schema | None]:
    """Each success status and its body's schema (None: no body); where the endpoint's
    rpcs answer one status with different bodies, one of them."""
    bodies: dict[int, list[Schema]] = {}
    for rpc in endpoint.rpcs:
        found = bodies.setdefault(rpc.status, [])
        if rpc.schema is not None and rpc.schema not in found:
            found.append(rpc.schema)
    return {
        status: None if not found else found[0] if len(found) == 1 else {"oneOf": found}
        for status, found in bodies.items()
    }


def _operation(endpoint: Endpoint) -> Schema:
    operation: Schema = {
        "operationId": endpoint.operation_id,
        "summary": endpoint.summary,
        "security": _SECURITY[endpoint.auth],
    }
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": _path_schema(name)}
        for name in re.findall(r"\{(\w+)\}", endpoint.path)
    ]
    parameters += [
        {"name": row.name, "in": "query", "required": row.required}
        | {"schema": field_schema(row, nullable=False)}
        for rpc in endpoint.rpcs
        if rpc.query is not None
        for row in rpc.query.fields
    ]
    if parameters:
        operation["parameters"] = parameters
    bodies = [rpc.body for rpc in endpoint.rpcs if rpc.body is not None]
    if bodies:
        # An rpc without a body beside one with a body (tag create beside rename): the
        # body is optional, and its absence asks for the other rpc.
        body_optional = len(bodies) < len(endpoint.rpcs)
        operation["requestBody"] = {
            "required": not body_optional
            and any(row.required for inputs in bodies for row in inputs.fields),
            "content": _json_content(_request_schema(bodies)),
        }
    responses: Schema = {}
    for status, schema in _success(endpoint).items():
        responses[str(status)] = {"description": endpoint.summary + ": success."}
        if schema is not None:
            responses[str(status)]["content"] = _json_content(schema)
    for status in ERROR_STATUSES:
        description = endpoint.not_found if status == 404 else _ERROR_DESCRIPTIONS[status]
        responses[str(status)] = {
            "description": description,
            "content": _json_content(ref(f"Error{status}")),
        }
    operation["responses"] = responses
    return operation


def openapi_document() -> dict[str, Any]:
    """The whole document, as a JSON-ready dict (a fresh copy: callers may change it)."""
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in ENDPOINTS:
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = _operation(endpoint)
    schemas = dict(COMPONENTS)
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
