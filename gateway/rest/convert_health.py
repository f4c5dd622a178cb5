"""JSON of the Health service (GET /v1.1/health)."""

from __future__ import annotations

from facegate.v1 import health_pb2
from gateway.rest.convert_common import JsonObject


def health_check_response_to_json(message: health_pb2.HealthCheckResponse) -> JsonObject:
    return {
        "status": message.status,
        "dependencies": [
            {"name": d.name, "status": d.status, "detail": d.detail} for d in message.dependencies
        ],
    }
