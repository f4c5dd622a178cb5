"""Explicit conversions between the extractor's domain types and protobuf messages,
one function per message and direction (face attributes: facegate/faces.py)."""

from __future__ import annotations

import math

import numpy as np

from extractor.pipeline import Extraction, Face
from extractor.selection import FaceSelection
from facegate.errors import invalid_request
from facegate.faces import attributes_to_proto
from facegate.templates import template_to_proto
from facegate.v1 import common_pb2, extractor_pb2


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
