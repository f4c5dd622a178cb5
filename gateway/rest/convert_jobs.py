"""JSON <-> protobuf for the Jobs service (/v1.1/jobs/bulkregister), one function per
message and direction. SetBulkSource is facegate's own call (gRPC only, no NEC route);
its converters keep every message of the public services convertible.

A job record renders as NEC's "register request summary": ``attempts`` as a decimal
string and the face attributes as a JSON string (``attributesJson``), "" when not set.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from facegate.errors import invalid_request
from facegate.v1 import jobs_pb2
from gateway.rest.convert_common import (
    JsonObject,
    enum_from_text,
    enum_text,
    face_attributes_from_json,
    face_attributes_to_json,
    list_of,
    text_of,
)
from gateway.rest.fields import (
    Field,
    Inputs,
    Values,
    as_integer_text,
    as_object,
    read_body,
    read_query,
)

REGISTRATION_ITEM = Inputs(
    (
        Field(
            "filename",
            "string",
            required=True,
            min_length=1,
            description="Name of the image file in the gallery's bulk source.",
        ),
        Field("tags", "strings", description="Names of existing tags to give the event."),
    )
)
BULK_REGISTER_BODY = Inputs(
    (
        Field(
            "registrations",
            "objects",
            required=True,
            items=REGISTRATION_ITEM,
            description="The images to register, one new subject each.",
        ),
    )
)

PROGRESS_QUERY = Inputs(
    (
        Field(
            "pagingId",
            "string",
            description="The lastEvaluatedKey of the previous page (as the SDKs send it).",
        ),
    )
)
SET_SOURCE_BODY = Inputs(
    (
        Field("uri", "string", required=True, min_length=1, description="file:// or s3://"),
        Field("endpointUrl", "string", description="S3-compatible endpoint."),
        Field("region", "string", description="The bucket's region."),
        Field("accessKeyId", "string", description="S3 credentials of this source."),
        Field("secretAccessKey", "string", description="The secret of accessKeyId."),
    )
)

_RECORD_STATUSES = {
    jobs_pb2.JOB_RECORD_STATUS_NEW: "New",
    jobs_pb2.JOB_RECORD_STATUS_PROCESSED: "Processed",
}
_REGISTER_STATUSES = {
    jobs_pb2.REGISTER_STATUS_UNSPECIFIED: "",
    jobs_pb2.REGISTER_STATUS_SUCCESS: "Success",
    jobs_pb2.REGISTER_STATUS_FAILED: "Failed",
}


# ------------------------------------------------------------------ BulkRegister


def _registration(values: Values) -> jobs_pb2.BulkRegistration:
    return jobs_pb2.BulkRegistration(
        filename=values.string("filename"), tags=values.strings("tags")
    )


def bulk_registration_to_json(message: jobs_pb2.BulkRegistration) -> JsonObject:
    return {"filename": message.filename, "tags": list(message.tags)}


def bulk_registration_from_json(body: object) -> jobs_pb2.BulkRegistration:
    return _registration(read_body(REGISTRATION_ITEM, body))


def jobs_bulk_register_request_from_json(body: object) -> jobs_pb2.JobsBulkRegisterRequest:
    values = read_body(BULK_REGISTER_BODY, body)
    return jobs_pb2.JobsBulkRegisterRequest(
        registrations=[_registration(item) for item in values.objects("registrations")]
    )


def jobs_bulk_register_request_to_json(message: jobs_pb2.JobsBulkRegisterRequest) -> JsonObject:
    return {"registrations": [bulk_registration_to_json(item) for item in message.registrations]}


def jobs_bulk_register_response_to_json(message: jobs_pb2.JobsBulkRegisterResponse) -> JsonObject:
    return {"batchId": message.batch_id}


def jobs_bulk_register_response_from_json(body: object) -> jobs_pb2.JobsBulkRegisterResponse:
    return jobs_pb2.JobsBulkRegisterResponse(batch_id=text_of(as_object(body, "body"), "batchId"))


# ------------------------------------------------------------------ GetBulkRegisterProgress


def jobs_get_bulk_register_progress_request_from_json(
    batch_id: str, paging_id: str, query: Mapping[str, Sequence[str]] | None = None
) -> jobs_pb2.JobsGetBulkRegisterProgressRequest:
    """``paging_id`` from the path, "" when the path has none; then ``?pagingId=`` (what
    the official SDKs send) counts; "" = the first page."""
    if not paging_id and query:
        paging_id = read_query(PROGRESS_QUERY, query).string("pagingId") or ""
    return jobs_pb2.JobsGetBulkRegisterProgressRequest(batch_id=batch_id, paging_id=paging_id)


def jobs_get_bulk_register_progress_request_to_json(
    message: jobs_pb2.JobsGetBulkRegisterProgressRequest,
) -> None:
    """No body: the ids travel in the path."""


def job_record_to_json(message: jobs_pb2.JobRecord) -> JsonObject:
    attributes = (
        json.dumps(face_attributes_to_json(message.attributes), separators=(",", ":"))
        if message.HasField("attributes")
        else ""
    )
    return {
        "id": message.id,
        "filename": message.filename,
        "attempts": str(message.attempts),
        "eventId": message.event_id,
        "subjectId": message.subject_id,
        "registerStatus": enum_text(_REGISTER_STATUSES, message.register_status, "registerStatus"),
        "reason": message.reason,
        "status": enum_text(_RECORD_STATUSES, message.status, "status"),
        "attributesJson": attributes,
    }


def job_record_from_json(body: object) -> jobs_pb2.JobRecord:
    obj = as_object(body, "processed")
    attributes_text = text_of(obj, "attributesJson")
    try:
        attributes = json.loads(attributes_text) if attributes_text else None
    except json.JSONDecodeError:
        raise invalid_request("attributesJson must be a JSON object string.") from None
    return jobs_pb2.JobRecord(
        id=text_of(obj, "id"),
        filename=text_of(obj, "filename"),
        attempts=as_integer_text(obj.get("attempts", "0"), "attempts"),
        event_id=text_of(obj, "eventId"),
        subject_id=text_of(obj, "subjectId"),
        register_status=enum_from_text(
            _REGISTER_STATUSES, obj.get("registerStatus", ""), "registerStatus"
        ),
        reason=text_of(obj, "reason"),
        status=enum_from_text(_RECORD_STATUSES, obj.get("status"), "status"),
        attributes=None if attributes is None else face_attributes_from_json(attributes),
    )


def jobs_get_bulk_register_progress_response_to_json(
    message: jobs_pb2.JobsGetBulkRegisterProgressResponse,
) -> JsonObject:
    return {
        "batchId": message.batch_id,
        "processed": [job_record_to_json(record) for record in message.processed],
        "lastEvaluatedKey": message.last_evaluated_key,
    }


def jobs_get_bulk_register_progress_response_from_json(
    body: object,
) -> jobs_pb2.JobsGetBulkRegisterProgressResponse:
    obj = as_object(body, "body")
    return jobs_pb2.JobsGetBulkRegisterProgressResponse(
        batch_id=text_of(obj, "batchId"),
        processed=[job_record_from_json(record) for record in list_of(obj, "processed")],
        last_evaluated_key=text_of(obj, "lastEvaluatedKey"),
    )


# ------------------------------------------------------------------ SetBulkSource


def jobs_set_bulk_source_request_from_json(body: object) -> jobs_pb2.JobsSetBulkSourceRequest:
    values = read_body(SET_SOURCE_BODY, body)
    return jobs_pb2.JobsSetBulkSourceRequest(
        uri=values.string("uri") or "",
        endpoint_url=values.string("endpointUrl") or "",
        region=values.string("region") or "",
        access_key_id=values.string("accessKeyId") or "",
        secret_access_key=values.string("secretAccessKey") or "",
    )


def jobs_set_bulk_source_request_to_json(
    message: jobs_pb2.JobsSetBulkSourceRequest,
) -> JsonObject:
    return {
        "uri": message.uri,
        "endpointUrl": message.endpoint_url,
        "region": message.region,
        "accessKeyId": message.access_key_id,
        "secretAccessKey": message.secret_access_key,
    }


def jobs_set_bulk_source_response_to_json(
    message: jobs_pb2.JobsSetBulkSourceResponse,
) -> None:
    """No body."""


def jobs_set_bulk_source_response_from_json(body: object) -> jobs_pb2.JobsSetBulkSourceResponse:
    del body
    return jobs_pb2.JobsSetBulkSourceResponse()
