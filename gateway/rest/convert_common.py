"""JSON <-> protobuf for the shared messages (face attributes, boxes, points) and the wire
forms every converter uses: NEC's attribute strings, timestamps and float32 numbers.

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

from facegate.errors import ErrorType, FacegateError, invalid_request
from facegate.v1 import common_pb2
from gateway.rest.fields import (
    as_integer,
    as_integer_text,
    as_list,
    as_number_text,
    as_object,
    as_string,
)

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


def timestamp_from_text(value: object, name: str) -> Timestamp:
    text = value if isinstance(value, str) else ""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise invalid_request(f"{name} must be an ISO 8601 timestamp with an offset.")
    stamp = Timestamp()
    stamp.FromDatetime(moment.astimezone(UTC))
    return stamp


def enum_text(mapping: Mapping[E, str], value: E, name: str) -> str:
    """The NEC string of an enum value; a value with none (UNSPECIFIED) is a server bug."""
    text = mapping.get(value)
    if text is None:
        raise FacegateError(ErrorType.INTERNAL, f"{name} is not set.")
    return text


def enum_from_text(mapping: Mapping[E, str], value: object, name: str) -> E:
    for number, text in mapping.items():
        if text == value:
            return number
    raise invalid_request(f"{name} must be one of {', '.join(mapping.values())}.")


# A response converter reads a missing property as its proto default: the shim renders
# every field, so only a foreign or truncated body lacks one.


def text_of(obj: JsonObject, key: str) -> str:
    return as_string(obj.get(key, ""), key)


def int_of(obj: JsonObject, key: str) -> int:
    return as_integer(obj.get(key, 0), key)


def list_of(obj: JsonObject, key: str) -> list[object]:
    return as_list(obj.get(key, []), key)


# ------------------------------------------------------------------ Box, Point


def box_to_json(message: common_pb2.Box) -> JsonObject:
    return {
        "left": str(message.left),
        "top": str(message.top),
        "right": str(message.right),
        "bottom": str(message.bottom),
    }


def box_from_json(body: object) -> common_pb2.Box:
    obj = as_object(body, "box")
    return common_pb2.Box(
        left=as_integer_text(obj.get("left", "0"), "left"),
        top=as_integer_text(obj.get("top", "0"), "top"),
        right=as_integer_text(obj.get("right", "0"), "right"),
        bottom=as_integer_text(obj.get("bottom", "0"), "bottom"),
    )


def point_to_json(message: common_pb2.Point) -> JsonObject:
    return {"x": str(message.x), "y": str(message.y)}


def point_from_json(body: object) -> common_pb2.Point:
    obj = as_object(body, "point")
    return common_pb2.Point(
        x=as_integer_text(obj.get("x", "0"), "x"),
        y=as_integer_text(obj.get("y", "0"), "y"),
    )


# ------------------------------------------------------------------ FaceAttributes


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


def face_attributes_from_json(body: object) -> common_pb2.FaceAttributes:
    obj = as_object(body, "attributes")

    def score(key: str) -> float:
        return as_number_text(obj.get(key, "0"), key)

    return common_pb2.FaceAttributes(
        face_area=box_from_json(obj.get("faceArea", {})),
        head_area=box_from_json(obj.get("headArea", {})),
        right_eye_center=point_from_json(obj.get("rightEyeCenter", {})),
        left_eye_center=point_from_json(obj.get("leftEyeCenter", {})),
        frontal_face_score=score("frontalFaceScore"),
        face_roll=score("faceRoll"),
        face_pan=score("facePan"),
        face_tilt=score("faceTilt"),
        face_score=score("faceScore"),
        face_quality_score=score("faceQualityScore"),
    )


def optional_attributes_from_json(value: object) -> common_pb2.FaceAttributes | None:
    """Response attributes; absent or null leaves the field unset."""
    return None if value is None else face_attributes_from_json(value)
