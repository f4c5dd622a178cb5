"""Face attributes <-> protobuf (facegate/faces.py): round trips, field coverage, and
that each field reaches the NEC attribute of its own name on the REST wire."""

from __future__ import annotations

import dataclasses

from facegate.faces import (
    Box,
    FaceAttributes,
    Point,
    attributes_from_proto,
    attributes_to_proto,
    box_from_proto,
    box_to_proto,
    point_from_proto,
    point_to_proto,
)
from facegate.v1 import common_pb2
from gateway.rest.convert_common import face_attributes_to_json, nec_number
from tests.support.attributes import distinct_attributes
from tests.support.messages import unset_fields


def camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(part.capitalize() for part in rest)


def test_box_round_trip() -> None:
    box = Box(-3, 4, 500, 600)
    message = box_to_proto(box)
    assert (message.left, message.top, message.right, message.bottom) == (-3, 4, 500, 600)
    assert box_from_proto(message) == box


def test_point_round_trip() -> None:
    point = Point(17, -2)
    message = point_to_proto(point)
    assert (message.x, message.y) == (17, -2)
    assert point_from_proto(message) == point


def test_attributes_round_trip() -> None:
    attributes = distinct_attributes()
    message = attributes_to_proto(attributes)
    back = attributes_from_proto(common_pb2.FaceAttributes.FromString(message.SerializeToString()))
    assert back == attributes


def test_dataclasses_have_the_fields_of_the_messages() -> None:
    for cls, message in (
        (Box, common_pb2.Box),
        (Point, common_pb2.Point),
        (FaceAttributes, common_pb2.FaceAttributes),
    ):
        names = [field.name for field in dataclasses.fields(cls)]
        assert names == [field.name for field in message.DESCRIPTOR.fields], cls.__name__


def test_attributes_to_proto_sets_every_field() -> None:
    """Fails when a field is added to FaceAttributes (proto) without a converter for it."""
    assert unset_fields(attributes_to_proto(distinct_attributes())) == []


def test_every_attribute_reaches_the_nec_attribute_of_the_same_name() -> None:
    """Catches swapped fields, in the converter or in the REST renderer: attribute x ->
    the NEC key camel(x) of what the shim sends, with x's value."""
    attributes = distinct_attributes()
    sent = face_attributes_to_json(attributes_to_proto(attributes))
    names = [field.name for field in common_pb2.FaceAttributes.DESCRIPTOR.fields]
    assert sorted(camel(n) for n in names) == sorted(sent)
    for name in names:
        value = getattr(attributes, name)
        if isinstance(value, Box | Point):
            expected: object = {
                field.name: str(getattr(value, field.name)) for field in dataclasses.fields(value)
            }
        else:
            expected = nec_number(value)
        assert sent[camel(name)] == expected, name


def test_attributes_from_default_proto_is_all_zero() -> None:
    attributes = attributes_from_proto(common_pb2.FaceAttributes())
    assert attributes.face_area == Box(0, 0, 0, 0)
    assert attributes.right_eye_center == Point(0, 0)
    assert attributes.face_quality_score == 0.0
