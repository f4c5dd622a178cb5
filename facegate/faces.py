"""A face's NEC ID attributes as every service holds them: plain frozen dataclasses, and
the one conversion to and from the ``common.proto`` messages that carry them between
services (proto/facegate/v1/common.proto documents each field).

The REST shim renders the messages as NEC's strings (gateway/rest/convert_common.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from facegate.v1 import common_pb2


@dataclass(frozen=True)
class Box:
    """Pixels of the upright image (after EXIF orientation), origin at the top-left
    corner; ``right`` and ``bottom`` exclusive."""

    left: int
    top: int
    right: int
    bottom: int


@dataclass(frozen=True)
class Point:
    """Pixels of the upright image, origin at the top-left corner."""

    x: int
    y: int


@dataclass(frozen=True)
class FaceAttributes:
    """The NEC ID "Face Attributes" of one face."""

    face_area: Box
    head_area: Box
    right_eye_center: Point
    """The subject's right eye: on the image's left for an upright, frontal face."""
    left_eye_center: Point
    """The subject's left eye: on the image's right for an upright, frontal face."""
    frontal_face_score: float
    face_roll: float
    face_pan: float
    face_tilt: float
    face_score: float
    face_quality_score: float


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
