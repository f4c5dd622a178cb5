"""JSON of the Jobs service (/v1.1/jobs/bulkregister): the request tables and the response
renderers.

A job record renders as NEC's "register request summary": ``attempts`` as a decimal
string and the face attributes as a JSON string (``attributesJson``), "" when not set.
"""

from __future__ import annotations

import json

from facegate.v1 import jobs_pb2
from gateway.rest.convert_common import JsonObject, enum_text, face_attributes_to_json
from gateway.rest.fields import Field, Inputs

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

_RECORD_STATUSES = {
    jobs_pb2.JOB_RECORD_STATUS_NEW: "New",
    jobs_pb2.JOB_RECORD_STATUS_PROCESSED: "Processed",
}
_REGISTER_STATUSES = {
    jobs_pb2.REGISTER_STATUS_UNSPECIFIED: "",
    jobs_pb2.REGISTER_STATUS_SUCCESS: "Success",
    jobs_pb2.REGISTER_STATUS_FAILED: "Failed",
}


def jobs_bulk_register_response_to_json(message: jobs_pb2.JobsBulkRegisterResponse) -> JsonObject:
    return {"batchId": message.batch_id}


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


def jobs_get_bulk_register_progress_response_to_json(
    message: jobs_pb2.JobsGetBulkRegisterProgressResponse,
) -> JsonObject:
    return {
        "batchId": message.batch_id,
        "processed": [job_record_to_json(record) for record in message.processed],
        "lastEvaluatedKey": message.last_evaluated_key,
    }
