"""JSON <-> protobuf for the Face service (/v1.1/face: extract, search, verify), one
function per message and direction, and the choice between the two verify rpcs that share
POST /v1.1/face/verify."""

from __future__ import annotations

from typing import Literal

from facegate.contract import DEFAULT_CANDIDATES, DEFAULT_THRESHOLD, MAX_CANDIDATES, MAX_SCORE
from facegate.errors import invalid_request
from facegate.v1 import face_pb2
from gateway.rest.convert_common import (
    JsonObject,
    face_attributes_to_json,
    int_of,
    list_of,
    optional_attributes_from_json,
    text_of,
)
from gateway.rest.fields import Field, Inputs, as_object, image_text, read_body

EXTRACT_BODY = Inputs(
    (
        Field("faces", "image", required=True, description="Base64 encoded image, any faces."),
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


# ------------------------------------------------------------------ Extract


def face_extract_request_from_json(body: object) -> face_pb2.FaceExtractRequest:
    values = read_body(EXTRACT_BODY, body)
    return face_pb2.FaceExtractRequest(
        image=values.image("faces"), limit=values.optional_integer("limit")
    )


def face_extract_request_to_json(message: face_pb2.FaceExtractRequest) -> JsonObject:
    body: JsonObject = {"faces": image_text(message.image)}
    if message.HasField("limit"):
        body["limit"] = message.limit
    return body


def extracted_face_to_json(message: face_pb2.ExtractedFace) -> JsonObject:
    return {"attributes": face_attributes_to_json(message.attributes)}


def extracted_face_from_json(body: object) -> face_pb2.ExtractedFace:
    obj = as_object(body, "faces")
    return face_pb2.ExtractedFace(attributes=optional_attributes_from_json(obj.get("attributes")))


def face_extract_response_to_json(message: face_pb2.FaceExtractResponse) -> JsonObject:
    return {"faces": [extracted_face_to_json(face) for face in message.faces]}


def face_extract_response_from_json(body: object) -> face_pb2.FaceExtractResponse:
    obj = as_object(body, "body")
    return face_pb2.FaceExtractResponse(
        faces=[extracted_face_from_json(face) for face in list_of(obj, "faces")]
    )


# ------------------------------------------------------------------ Search


def face_search_request_from_json(body: object) -> face_pb2.FaceSearchRequest:
    values = read_body(SEARCH_BODY, body)
    return face_pb2.FaceSearchRequest(
        probe=values.image("probe"),
        threshold=values.optional_integer("threshold"),
        limit=values.optional_integer("limit"),
        tags=values.strings("tags"),
    )


def face_search_request_to_json(message: face_pb2.FaceSearchRequest) -> JsonObject:
    body: JsonObject = {"probe": image_text(message.probe)}
    if message.HasField("threshold"):
        body["threshold"] = message.threshold
    if message.HasField("limit"):
        body["limit"] = message.limit
    body["tags"] = list(message.tags)
    return body


def candidate_event_to_json(message: face_pb2.CandidateEvent) -> JsonObject:
    return {"id": message.id, "score": message.score}


def candidate_event_from_json(body: object) -> face_pb2.CandidateEvent:
    obj = as_object(body, "events")
    return face_pb2.CandidateEvent(id=text_of(obj, "id"), score=int_of(obj, "score"))


def candidate_to_json(message: face_pb2.Candidate) -> JsonObject:
    return {
        "id": message.id,
        "score": message.score,
        "events": [candidate_event_to_json(event) for event in message.events],
    }


def candidate_from_json(body: object) -> face_pb2.Candidate:
    obj = as_object(body, "candidates")
    return face_pb2.Candidate(
        id=text_of(obj, "id"),
        score=int_of(obj, "score"),
        events=[candidate_event_from_json(event) for event in list_of(obj, "events")],
    )


def face_search_response_to_json(message: face_pb2.FaceSearchResponse) -> JsonObject:
    return {
        "candidates": [candidate_to_json(candidate) for candidate in message.candidates],
        "attributes": face_attributes_to_json(message.attributes),
    }


def face_search_response_from_json(body: object) -> face_pb2.FaceSearchResponse:
    obj = as_object(body, "body")
    return face_pb2.FaceSearchResponse(
        candidates=[candidate_from_json(candidate) for candidate in list_of(obj, "candidates")],
        attributes=optional_attributes_from_json(obj.get("attributes")),
    )


# ------------------------------------------------------------------ Verify


def face_verify_subject_request_from_json(body: object) -> face_pb2.FaceVerifySubjectRequest:
    values = read_body(VERIFY_SUBJECT_BODY, body)
    return face_pb2.FaceVerifySubjectRequest(id=values.string("id"), probe=values.image("probe"))


def face_verify_subject_request_to_json(
    message: face_pb2.FaceVerifySubjectRequest,
) -> JsonObject:
    return {"id": message.id, "probe": image_text(message.probe)}


def face_verify_subject_response_to_json(
    message: face_pb2.FaceVerifySubjectResponse,
) -> JsonObject:
    return {"id": message.id, "score": message.score}


def face_verify_subject_response_from_json(body: object) -> face_pb2.FaceVerifySubjectResponse:
    obj = as_object(body, "body")
    return face_pb2.FaceVerifySubjectResponse(id=text_of(obj, "id"), score=int_of(obj, "score"))


def face_verify_faces_request_from_json(body: object) -> face_pb2.FaceVerifyFacesRequest:
    values = read_body(VERIFY_FACES_BODY, body)
    return face_pb2.FaceVerifyFacesRequest(face=values.image("face"), probe=values.image("probe"))


def face_verify_faces_request_to_json(message: face_pb2.FaceVerifyFacesRequest) -> JsonObject:
    return {"face": image_text(message.face), "probe": image_text(message.probe)}


def face_verify_faces_response_to_json(message: face_pb2.FaceVerifyFacesResponse) -> JsonObject:
    return {"score": message.score}


def face_verify_faces_response_from_json(body: object) -> face_pb2.FaceVerifyFacesResponse:
    return face_pb2.FaceVerifyFacesResponse(score=int_of(as_object(body, "body"), "score"))
