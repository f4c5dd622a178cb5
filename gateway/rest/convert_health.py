"""JSON <-> protobuf for the Health service (GET /v1.1/health)."""

from __future__ import annotations

from facegate.v1 import health_pb2
from gateway.rest.convert_common import JsonObject, list_of, text_of
from gateway.rest.fields import as_object


def health_check_request_from_json() -> health_pb2.HealthCheckRequest:
    return health_pb2.HealthCheckRequest()


def health_check_request_to_json(message: health_pb2.HealthCheckRequest) -> None:
    """No body."""


def dependency_health_to_json(message: health_pb2.DependencyHealth) -> JsonObject:
    return {"name": message.name, "status": message.status, "detail": message.detail}


def dependency_health_from_json(body: object) -> health_pb2.DependencyHealth:
    obj = as_object(body, "dependencies")
    return health_pb2.DependencyHealth(
        name=text_of(obj, "name"), status=text_of(obj, "status"), detail=text_of(obj, "detail")
    )


def health_check_response_to_json(message: health_pb2.HealthCheckResponse) -> JsonObject:
    return {
        "status": message.status,
        "dependencies": [dependency_health_to_json(d) for d in message.dependencies],
    }


def health_check_response_from_json(body: object) -> health_pb2.HealthCheckResponse:
    obj = as_object(body, "body")
    return health_pb2.HealthCheckResponse(
        status=text_of(obj, "status"),
        dependencies=[dependency_health_from_json(d) for d in list_of(obj, "dependencies")],
    )
