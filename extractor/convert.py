"""Explicit conversions between the extractor's domain types and protobuf messages,
one function per message and direction."""

from __future__ import annotations

import math

import numpy as np

from extractor.attributes import Box, FaceAttributes, Point
from extractor.pipeline import Extraction, Face
from extractor.selection import FaceSelection
from facegate.errors import invalid_request
from facegate.templates import template_to_proto
from facegate.v1 import common_pb2, extractor_pb2


def box_to_proto(box: Box) -> common_pb2.Box:
    return common_pb2.Box(left=box.left, top=box.top, right=box.right, bottom=box.bottom)


def box_from_proto(message: common_pb2.Box) -> Box:
    return Box(message.left, message.top, message.right, message.bottom)


def point_to_proto(point: Point) -> common_pb2.Point:
    return common_pb2.Point(x=point.x, y=point.y)


def point_from_proto(message: common_pb2.Point) -> Point:
    return Point(message.x, message.y)


def attributes_to_proto(attributes: FaceAttributes) -> common_pb2.FaceAttributes:
    return common_pb2.FaceAttributes(
        face_area=box_to_proto(attributes.face_area),
        head_area=box_to_proto(attributes.head_area),
        right_eye_center=point_to_proto(attributes.right_eye_center),
        left_eye_center=point_to_proto(attributes.left_eye_center),
        frontal_face_score=attributes.frontal_face_score,
        face_roll=attributes.face_roll,
        face_pan=attributes.face_pan,
        face_tilt=attributes.face_tilt,
        face_score=attributes.face_score,
        face_quality_score=attributes.face_quality_score,
    )


def attributes_from_proto(message: common_pb2.FaceAttributes) -> FaceAttributes:
    return FaceAttributes(
        face_area=box_from_proto(message.face_area),
        head_area=box_from_proto(message.head_area),
        right_eye_center=point_from_proto(message.right_eye_center),
        left_eye_center=point_from_proto(message.left_eye_center),
        frontal_face_score=message.frontal_face_score,
        face_roll=message.face_roll,
        face_pan=message.face_pan,
        face_tilt=message.face_tilt,
        face_score=message.face_score,
        face_quality_score=message.face_quality_score,
    )


def template_from_proto(
    message: common_pb2.Template, *, model_id: str, dimension: int, name: str = "template"
) -> np.ndarray:
    """The embedding as a unit float32 vector, after checking it belongs to ``model_id``."""
    if message.model_id != model_id:
        raise invalid_request(
            f"{name} was made by model {message.model_id or '(none)'!r}; this service "
            f"compares only {model_id!r} templates."
        )
    vector = np.asarray(message.embedding, dtype=np.float32)
    if vector.shape != (dimension,):
        raise invalid_request(f"{name} has {vector.size} values; {model_id} has {dimension}.")
    norm = float(np.linalg.norm(vector))
    if not math.isfinite(norm) or norm < 1e-6:
        raise invalid_request(f"{name} is not a valid embedding (zero, NaN or infinite).")
    return vector / norm


def face_to_proto(face: Face, model_id: str) -> extractor_pb2.DetectedFace:
    message = extractor_pb2.DetectedFace(attributes=attributes_to_proto(face.attributes))
    if face.embedding is not None:
        message.template.CopyFrom(template_to_proto(model_id, face.embedding))
    return message


def extraction_to_proto(extraction: Extraction) -> extractor_pb2.ExtractorExtractResponse:
    return extractor_pb2.ExtractorExtractResponse(
        faces=[face_to_proto(f, extraction.model_id) for f in extraction.faces],
        image_width=extraction.width,
        image_height=extraction.height,
        model_id=extraction.model_id,
    )


_SELECTIONS = {
    extractor_pb2.FACE_SELECTION_UNSPECIFIED: FaceSelection.ALL,
    extractor_pb2.FACE_SELECTION_ALL: FaceSelection.ALL,
    extractor_pb2.FACE_SELECTION_SINGLE: FaceSelection.SINGLE,
    extractor_pb2.FACE_SELECTION_PROMINENT: FaceSelection.PROMINENT,
}
_SELECTIONS_BACK = {
    FaceSelection.ALL: extractor_pb2.FACE_SELECTION_ALL,
    FaceSelection.SINGLE: extractor_pb2.FACE_SELECTION_SINGLE,
    FaceSelection.PROMINENT: extractor_pb2.FACE_SELECTION_PROMINENT,
}


def selection_from_proto(value: int) -> FaceSelection:
    try:
        return _SELECTIONS[value]  # type: ignore[index]
    except KeyError:
        raise invalid_request(f"selection {value} is not a known face selection.") from None


def selection_to_proto(selection: FaceSelection) -> extractor_pb2.FaceSelection.ValueType:
    return _SELECTIONS_BACK[selection]
