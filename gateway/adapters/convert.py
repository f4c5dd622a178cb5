"""Faces and templates: protobuf <-> the domain's dataclasses (gateway/faces.py)."""

from __future__ import annotations

import numpy as np

from facegate.v1 import common_pb2
from gateway.faces import Box, Face, FaceAttributes, Point, Template


def box_from_message(message: common_pb2.Box) -> Box:
    return Box(message.left, message.top, message.right, message.bottom)


def point_from_message(message: common_pb2.Point) -> Point:
    return Point(message.x, message.y)


def attributes_from_message(message: common_pb2.FaceAttributes) -> FaceAttributes:
    return FaceAttributes(
        face_area=box_from_message(message.face_area),
        head_area=box_from_message(message.head_area),
        right_eye_center=point_from_message(message.right_eye_center),
        left_eye_center=point_from_message(message.left_eye_center),
        frontal_face_score=message.frontal_face_score,
        face_roll=message.face_roll,
        face_pan=message.face_pan,
        face_tilt=message.face_tilt,
        face_score=message.face_score,
        face_quality_score=message.face_quality_score,
    )


def attributes_message(attributes: FaceAttributes) -> common_pb2.FaceAttributes:
    return common_pb2.FaceAttributes(
        face_area=box_message(attributes.face_area),
        head_area=box_message(attributes.head_area),
        right_eye_center=point_message(attributes.right_eye_center),
        left_eye_center=point_message(attributes.left_eye_center),
        frontal_face_score=attributes.frontal_face_score,
        face_roll=attributes.face_roll,
        face_pan=attributes.face_pan,
        face_tilt=attributes.face_tilt,
        face_score=attributes.face_score,
        face_quality_score=attributes.face_quality_score,
    )


def box_message(box: Box) -> common_pb2.Box:
    return common_pb2.Box(left=box.left, top=box.top, right=box.right, bottom=box.bottom)


def point_message(point: Point) -> common_pb2.Point:
    return common_pb2.Point(x=point.x, y=point.y)


def template_from_message(message: common_pb2.Template) -> Template:
    return Template(message.model_id, np.asarray(message.embedding, dtype=np.float32))


def template_message(template: Template) -> common_pb2.Template:
    message = common_pb2.Template(model_id=template.model_id)
    message.embedding.extend(template.embedding.tolist())
    return message


def face_from_message(attributes: common_pb2.FaceAttributes, template: common_pb2.Template) -> Face:
    return Face(attributes_from_message(attributes), template_from_message(template))
