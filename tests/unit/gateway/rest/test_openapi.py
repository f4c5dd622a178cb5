"""The OpenAPI document: a valid OpenAPI 3.0 document of exactly the endpoints, whose request
schemas the endpoints accept and whose response schemas match what they render."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import jsonschema_rs
import pytest
import schemathesis
from google.protobuf.descriptor import Descriptor, MethodDescriptor
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.definitions import OPENAPI_30_VALIDATOR

from facegate.errors import ErrorType, FacegateError
from facegate.v1 import face_pb2, subjects_pb2
from gateway.rest.endpoints import ENDPOINTS, Endpoint, RestCall
from gateway.rest.openapi import ERROR_STATUSES, openapi_document
from gateway.rest.routes import match

DOCUMENT = openapi_document()
SCHEMA = schemathesis.openapi.from_dict(DOCUMENT)
SECURITY: dict[str, list[dict[str, list[str]]]] = {
    "none": [],
    "sigv4": [{"sigv4": []}],
    "sigv4+apikey": [{"sigv4": [], "api_key": []}],
}


def _operation(route: Endpoint) -> dict[str, Any]:
    operation: dict[str, Any] = DOCUMENT["paths"][route.path][route.method.lower()]
    return operation


def _check(schema: dict[str, Any], instance: object) -> None:
    """Validates against a schema of the document, its $refs resolved within it."""
    jsonschema_rs.validator_for({"components": DOCUMENT["components"], **schema}).validate(instance)


def _check_reply(route: Endpoint, status: int, body: object) -> None:
    responses = _operation(route)["responses"]
    assert str(status) in responses, f"{route.method} {route.path} does not list {status}"
    content = responses[str(status)].get("content")
    if body is None:
        assert content is None, f"{route.method} {route.path} {status} documents a body"
    else:
        assert content is not None, f"{route.method} {route.path} {status} documents no body"
        _check(content["application/json"]["schema"], body)


def test_document_is_valid_openapi_3_0() -> None:
    assert DOCUMENT["openapi"] == "3.0.3"
    assert json.loads(json.dumps(DOCUMENT)) == DOCUMENT
    assert openapi_document() is not openapi_document()
    OPENAPI_30_VALIDATOR.validate(DOCUMENT)
    SCHEMA.validate()


def test_document_lists_exactly_the_routes() -> None:
    documented = {
        (method.upper(), path)
        for path, operations in DOCUMENT["paths"].items()
        for method in operations
    }
    assert documented == {(route.method, route.path) for route in ENDPOINTS}
    ids = [_operation(route)["operationId"] for route in ENDPOINTS]
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("route", ENDPOINTS, ids=lambda route: f"{route.method} {route.path}")
def test_operation_parameters_security_and_statuses(route: Endpoint) -> None:
    operation = _operation(route)
    path_names = [p["name"] for p in operation.get("parameters", []) if p["in"] == "path"]
    assert path_names == re.findall(r"\{(\w+)\}", route.path)
    assert operation["security"] == SECURITY[route.auth]
    statuses = {int(status) for status in operation["responses"]}
    assert set(ERROR_STATUSES) <= statuses
    assert statuses & {200, 201, 204}
    assert operation["summary"] == route.summary


@pytest.mark.parametrize("error_type", list(ErrorType), ids=lambda kind: kind.type_name)
def test_every_error_body_matches_its_status(error_type: ErrorType) -> None:
    assert error_type.http_status in ERROR_STATUSES
    body = FacegateError(error_type, "Something went wrong.").nec_body()
    for route in ENDPOINTS:
        _check_reply(route, error_type.http_status, body)


def _rpc(call: RestCall) -> MethodDescriptor:
    module = __import__(f"facegate.v1.{call.service.lower()}_pb2", fromlist=["DESCRIPTOR"])
    rpc: MethodDescriptor = module.DESCRIPTOR.services_by_name[call.service].methods_by_name[
        call.method
    ]
    return rpc


def _responses(call: RestCall, populate: Callable[[Descriptor, int], Message]) -> list[Message]:
    """A fully populated response, and those the REST layer answers differently."""
    responses = [populate(_rpc(call).output_type, 1)]
    if call.method == "VerifySubject":
        responses.append(face_pb2.FaceVerifySubjectResponse(id="s", score=8200))
    if (call.service, call.method) == ("Face", "Search"):
        responses.append(face_pb2.FaceSearchResponse())
    if (call.service, call.method) == ("Subjects", "List"):
        responses.append(subjects_pb2.SubjectsListResponse(total=5))
    return responses


def _query(values: dict[str, Any] | None) -> dict[str, list[str]]:
    return {key: [str(value)] for key, value in (values or {}).items()}


@pytest.mark.parametrize("route", ENDPOINTS, ids=lambda route: f"{route.method} {route.path}")
def test_documented_requests_are_accepted_and_replies_match(
    route: Endpoint, populate: Callable[[Descriptor, int], Message]
) -> None:
    """Requests generated from the document build a call (the shim accepts what the schema
    allows), and each reply rendered for it matches the documented status and schema."""
    operation = SCHEMA[route.path][route.method]

    @settings(
        max_examples=15,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(operation.as_strategy())
    def check(case: Any) -> None:
        path = unquote(case.formatted_path)
        found = match(route.method, path)
        assert found is not None, path
        assert found[0] == route
        assert found[1] == {key: unquote(value) for key, value in case.path_parameters.items()}
        body = case.body if isinstance(case.body, dict | list | str | int | float) else None
        call = route.build(found[1], _query(case.query), body)
        for response in _responses(call, populate):
            status, rendered = call.render(response)
            _check_reply(route, status, rendered)

    check()


def test_verify_documents_both_bodies() -> None:
    (verify,) = (route for route in ENDPOINTS if route.path == "/v1.1/face/verify")
    schema = _operation(verify)["requestBody"]["content"]["application/json"]["schema"]
    assert [option["required"] for option in schema["oneOf"]] == [
        ["id", "probe"],
        ["face", "probe"],
    ]


def test_request_schemas_carry_types_and_ranges() -> None:
    search = DOCUMENT["paths"]["/v1.1/face/search"]["post"]["requestBody"]
    properties = search["content"]["application/json"]["schema"]["properties"]
    assert properties["probe"] == {
        "type": "string",
        "format": "byte",
        "minLength": 1,
        "description": "Base64 encoded image, one face.",
    }
    assert (properties["threshold"]["minimum"], properties["threshold"]["maximum"]) == (0, 9999)
    assert (properties["limit"]["minimum"], properties["limit"]["maximum"]) == (1, 50)
    assert properties["limit"]["nullable"] is True
    listing = DOCUMENT["paths"]["/v1.1/subjects"]["get"]["parameters"]
    assert {p["name"]: p["schema"].get("enum") for p in listing} == {
        "start": None,
        "length": None,
        "dir": ["asc", "desc"],
    }
    assert DOCUMENT["components"]["schemas"]["Error400"]["required"] == [
        "message",
        "errorCode",
        "errorType",
    ]
    assert DOCUMENT["components"]["schemas"]["Error403"]["required"] == ["message"]
