"""Faces and templates: protobuf <-> the domain's dataclasses (gateway/faces.py); the
attributes' own conversions are facegate/faces.py's."""

from __future__ import annotations

import numpy as np

from facegate.faces import attributes_from_proto
from facegate.v1 import common_pb2
from gateway.faces import Face, Template


def template_from_message(message: common_pb2.Template) -> Template:
    return Template(message.model_id, np.asarray(message.embedding, dtype=np.float32))


def template_message(template: Template) -> common_pb2.Template:
    message = common_pb2.Template(model_id=template.model_id)
    message.embedding.extend(template.embedding.tolist())
    return message


def face_from_message(attributes: common_pb2.FaceAttributes, template: common_pb2.Template) -> Face:
    return Face(attributes_from_proto(attributes), template_from_message(template))
