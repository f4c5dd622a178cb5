"""Faces and templates: protobuf <-> the domain's dataclasses (gateway/faces.py); the
attributes' own conversions are facegate/faces.py's."""

from __future__ import annotations

import numpy as np

from facegate.faces import attributes_from_proto
from facegate.templates import template_to_proto
from facegate.v1 import common_pb2
from gateway.faces import Face, Template


def template_from_message(message: common_pb2.Template) -> Template:
    return Template(message.model_id, np.asarray(message.embedding, dtype=np.float32))


def template_message(template: Template) -> common_pb2.Template:
    return template_to_proto(template.model_id, template.embedding)


def face_from_message(attributes: common_pb2.FaceAttributes, template: common_pb2.Template) -> Face:
    return Face(attributes_from_proto(attributes), template_from_message(template))
