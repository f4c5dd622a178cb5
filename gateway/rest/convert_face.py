"""JSON of the Face service (/v1.1/face: extract, search, verify): the request tables, the
response renderers, and the choice between the two verify rpcs that share
POST /v1.1/face/verify."""

from __future__ import annotations

from typing import Literal

from facegate.contract import DEFAULT_CANDIDATES, DEFAULT_THRESHOLD, MAX_CANDIDATES, MAX_SCORE
from facegate.errors import invalid_request
from facegate.v1 import face_pb2
from gateway.rest.convert_common import JsonObject, face_attributes_to_json
from gateway.rest.fields import Field, Inputs

EXTRACT_BODY = Inputs(
    (
        Field(
            "faces",
            "image",
            required=True,
            description="Base64 encoded image, any faces.",
            message_field="image",
        ),
        Field("limit", "integer", minimum=1, maximum=20, description="Most faces; 10 if not set."),
    )
)
SEARCH_BODY = Inputs(
    (
        Field("probe", "image", required=True, description="Base64 encoded image, one face."),
        Field(
            "threshold",
            "integer",
            minimum=0,
            maximum=MAX_SCORE,
            description=f"Lowest score returned; {DEFAULT_THRESHOLD} if not set.",
        ),
        Field(
            "limit",
            "integer",
            minimum=1,
            maximum=MAX_CANDIDATES,
            description=f"Most events over all candidates; {DEFAULT_CANDIDATES} if not set.",
        ),
        Field("tags", "strings", description="Search only events with any of these tags."),
    )
)
VERIFY_SUBJECT_BODY = Inputs(
    (
        Field("id", "string", required=True, description="Id of the subject to verify."),
        Field("probe", "image", required=True, description="Base64 encoded image, one face."),
    )
)
VERIFY_FACES_BODY = Inputs(
    (
        Field("face", "image", required=True, description="Base64 encoded image, one face."),
        Field("probe", "image", required=True, description="Base64 encoded image, one face."),
    )
)


def face_verify_rpc(body: object) -> Literal["VerifySubject", "VerifyFaces"]:
    """The rpc a verify body asks for: {"id", "probe"} verifies against a subject,
    {"face", "probe"} against another face. A null property counts as absent, as SDK
    request classes may send the one they do not use as null."""
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise invalid_request("Request body must be a JSON object.")
    has_id, has_face = body.get("id") is not None, body.get("face") is not None
    if has_id and has_face:
        raise invalid_request("Only one of id and face may be provided.")
    if has_id:
        return "VerifySubject"
    if has_face:
        return "VerifyFaces"
    raise invalid_request("id or face property must be provided.")


def face_extract_response_to_json(message: face_pb2.FaceExtractResponse) -> JsonObject:
    return {"faces": [{"attributes": face_attributes_to_json(f.attributes)} for f in message.faces]}


def candidate_to_json(message: face_pb2.Candidate) -> JsonObject:
    return {
        "id": message.id,
        "score": message.score,
        "events": [{"id": event.id, "score": event.score} for event in message.events],
    }


def face_search_response_to_json(message: face_pb2.FaceSearchResponse) -> JsonObject:
    return {
        "candidates": [candidate_to_json(candidate) for candidate in message.candidates],
        "attributes": face_attributes_to_json(message.attributes),
    }


def face_verify_subject_response_to_json(
    message: face_pb2.FaceVerifySubjectResponse,
) -> JsonObject:
    return {"id": message.id, "score": message.score}


def face_verify_faces_response_to_json(message: face_pb2.FaceVerifyFacesResponse) -> JsonObject:
    return {"score": message.score}
