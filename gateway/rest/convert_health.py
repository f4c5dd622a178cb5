"""JSON <-> protobuf for the Health service (GET /v1.1/health)."""

from __future__ import annotations

from facegate.v1 import health_pb2
from gateway.rest.convert_common import JsonObject, text_of
from gateway.rest.fields import as_object


def health_check_request_from_json() -> health_pb2.HealthCheckRequest:
    return health_pb2.HealthCheckRequest()


def health_check_request_to_json(message: health_pb2.HealthCheckRequest) -> None:
    """No body."""


def health_check_response_to_json(message: health_pb2.HealthCheckResponse) -> JsonObject:
    return {"status": message.status}


def health_check_response_from_json(body: object) -> health_pb2.HealthCheckResponse:
    return health_pb2.HealthCheckResponse(status=text_of(as_object(body, "body"), "status"))
