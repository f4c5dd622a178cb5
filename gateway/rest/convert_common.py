"""Protobuf -> JSON for the shared messages (face attributes, boxes, points) and the wire
forms every response renderer uses: NEC's attribute strings, timestamps and float32
numbers.

NEC ID renders every attribute value as a string: pixel coordinates as integers ("161")
and scores and angles in C's ``%g`` style with six significant digits ("0.569824",
"4.93922", "-0").
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TypeVar

import numpy as np
from google.protobuf.timestamp_pb2 import Timestamp

from facegate.errors import ErrorType, FacegateError
from facegate.v1 import common_pb2

JsonObject = dict[str, object]
E = TypeVar("E", bound=int)


def nec_number(value: float) -> str:
    """C's ``%g``: six significant digits, no trailing zeros."""
    return f"{value:g}"


def float32_number(value: float) -> float:
    """The shortest decimal that reads back as the same float32: 0.8, not
    0.800000011920929, for a float field of a message."""
    return float(str(np.float32(value)))


def timestamp_text(stamp: Timestamp) -> str:
    """ISO 8601 UTC with milliseconds and offset: "2018-12-18T00:27:56.427+00:00"."""
    moment = datetime.fromtimestamp(stamp.seconds, UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{stamp.nanos // 1_000_000:03d}+00:00"


def enum_text(mapping: Mapping[E, str], value: E, name: str) -> str:
    """The NEC string of an enum value; a value with none (UNSPECIFIED) is a server bug."""
    text = mapping.get(value)
    if text is None:
        raise FacegateError(ErrorType.INTERNAL, f"{name} is not set.")
    return text


def box_to_json(message: common_pb2.Box) -> JsonObject:
    return {
        "left": str(message.left),
        "top": str(message.top),
        "right": str(message.right),
        "bottom": str(message.bottom),
    }


def point_to_json(message: common_pb2.Point) -> JsonObject:
    return {"x": str(message.x), "y": str(message.y)}


def face_attributes_to_json(message: common_pb2.FaceAttributes) -> JsonObject:
    return {
        "faceArea": box_to_json(message.face_area),
        "headArea": box_to_json(message.head_area),
        "rightEyeCenter": point_to_json(message.right_eye_center),
        "leftEyeCenter": point_to_json(message.left_eye_center),
        "frontalFaceScore": nec_number(message.frontal_face_score),
        "faceRoll": nec_number(message.face_roll),
        "facePan": nec_number(message.face_pan),
        "faceTilt": nec_number(message.face_tilt),
        "faceScore": nec_number(message.face_score),
        "faceQualityScore": nec_number(message.face_quality_score),
    }
