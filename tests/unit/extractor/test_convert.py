"""Domain <-> protobuf conversions: round trips, field coverage, template validation."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from google.protobuf.descriptor import FieldDescriptor

from extractor.attributes import Box, FaceAttributes, Point, nec_number
from extractor.convert import (
    attributes_from_proto,
    attributes_to_proto,
    box_from_proto,
    box_to_proto,
    extraction_to_proto,
    face_to_proto,
    point_from_proto,
    point_to_proto,
    selection_from_proto,
    selection_to_proto,
    template_from_proto,
)
from extractor.pipeline import Extraction, Face
from extractor.quality import QualityFeatures
from extractor.selection import FaceSelection
from facegate.errors import ErrorType, FacegateError
from facegate.templates import template_to_proto
from facegate.v1 import common_pb2, extractor_pb2

MODEL_ID = "edgeface-s-gamma05@0123456789ab"
DIM = 8


def distinct_attributes() -> FaceAttributes:
    """Every value non-zero, distinct and exactly representable as float32."""
    return FaceAttributes(
        face_area=Box(11, 12, 113, 114),
        head_area=Box(-5, 1, 130, 150),
        right_eye_center=Point(40, 50),
        left_eye_center=Point(80, 49),
        frontal_face_score=0.875,
        face_roll=-4.5,
        face_pan=12.25,
        face_tilt=-7.75,
        face_score=0.9921875,
        face_quality_score=0.640625,
    )


def features() -> QualityFeatures:
    return QualityFeatures(**{name: 1.0 + i for i, name in enumerate(QualityFeatures.names())})


def unit(seed: int, dim: int = DIM) -> np.ndarray:
    vector = np.random.default_rng(seed).normal(size=dim).astype(np.float32)
    result: np.ndarray = vector / np.linalg.norm(vector)
    return result


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


def test_attributes_to_proto_sets_every_field() -> None:
    """Fails when a field is added to FaceAttributes (proto) without a converter for it."""

    def unset(message: common_pb2.FaceAttributes | common_pb2.Box | common_pb2.Point) -> list[str]:
        present = {field.name for field, _ in message.ListFields()}
        missing = []
        for field in message.DESCRIPTOR.fields:
            if field.name not in present:
                missing.append(field.name)
            elif field.type == FieldDescriptor.TYPE_MESSAGE:
                missing += [f"{field.name}.{n}" for n in unset(getattr(message, field.name))]
        return missing

    assert unset(attributes_to_proto(distinct_attributes())) == []


def test_every_proto_attribute_maps_to_the_nec_attribute_of_the_same_name() -> None:
    """Catches swapped fields: proto field x -> the NEC key camel(x), with the same value."""
    attributes = distinct_attributes()
    nec = attributes.to_nec()
    message = attributes_to_proto(attributes)
    names = [field.name for field in common_pb2.FaceAttributes.DESCRIPTOR.fields]
    assert sorted(camel(n) for n in names) == sorted(nec)
    for field in common_pb2.FaceAttributes.DESCRIPTOR.fields:
        value = getattr(message, field.name)
        expected = nec[camel(field.name)]
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            parts = {sub.name: str(getattr(value, sub.name)) for sub in value.DESCRIPTOR.fields}
            assert parts == expected, field.name
        else:
            assert nec_number(value) == expected, field.name


def test_attributes_from_default_proto_is_all_zero() -> None:
    attributes = attributes_from_proto(common_pb2.FaceAttributes())
    assert attributes.face_area == Box(0, 0, 0, 0)
    assert attributes.face_quality_score == 0.0


def test_template_round_trip() -> None:
    vector = unit(1)
    message = template_to_proto(MODEL_ID, vector)
    assert message.model_id == MODEL_ID
    wire = common_pb2.Template.FromString(message.SerializeToString())
    back = template_from_proto(wire, model_id=MODEL_ID, dimension=DIM)
    assert back.dtype == np.float32
    np.testing.assert_allclose(back, vector, rtol=0, atol=1e-6)


def test_template_from_proto_normalises() -> None:
    message = common_pb2.Template(model_id=MODEL_ID, embedding=[3.0, 4.0] + [0.0] * (DIM - 2))
    back = template_from_proto(message, model_id=MODEL_ID, dimension=DIM)
    np.testing.assert_allclose(back[:2], [0.6, 0.8], atol=1e-7)
    assert math.isclose(float(np.linalg.norm(back)), 1.0, rel_tol=1e-6)


def _refused(message: common_pb2.Template, pattern: str) -> None:
    with pytest.raises(FacegateError, match=pattern) as info:
        template_from_proto(message, model_id=MODEL_ID, dimension=DIM, name="probe")
    assert info.value.error_type is ErrorType.INVALID_REQUEST
    assert info.value.message.startswith("probe ")


def test_template_of_another_model_is_refused() -> None:
    other = common_pb2.Template(model_id="sface-2021dec@abcdefabcdef", embedding=unit(2).tolist())
    _refused(other, re.escape("'sface-2021dec@abcdefabcdef'"))
    _refused(other, re.escape(repr(MODEL_ID)))
    _refused(common_pb2.Template(embedding=unit(2).tolist()), re.escape("(none)"))


@pytest.mark.parametrize("size", [0, DIM - 1, DIM + 1, 2 * DIM])
def test_template_of_wrong_dimension_is_refused(size: int) -> None:
    message = common_pb2.Template(model_id=MODEL_ID, embedding=[0.5] * size)
    _refused(message, f"has {size} values")


@pytest.mark.parametrize(
    "embedding",
    [
        [0.0] * DIM,
        [1e-9] * DIM,
        [math.nan] + [0.1] * (DIM - 1),
        [math.inf] + [0.1] * (DIM - 1),
        [-math.inf] + [0.1] * (DIM - 1),
    ],
    ids=["zero", "tiny", "nan", "inf", "-inf"],
)
def test_invalid_embedding_is_refused(embedding: list[float]) -> None:
    _refused(common_pb2.Template(model_id=MODEL_ID, embedding=embedding), "not a valid embedding")


@pytest.mark.parametrize("selection", list(FaceSelection))
def test_selection_round_trip(selection: FaceSelection) -> None:
    assert selection_from_proto(selection_to_proto(selection)) is selection


def test_every_proto_selection_is_understood() -> None:
    for value in extractor_pb2.FaceSelection.values():
        selection_from_proto(value)
    assert selection_from_proto(extractor_pb2.FACE_SELECTION_UNSPECIFIED) is FaceSelection.ALL


def test_unknown_selection_is_invalid_request() -> None:
    with pytest.raises(FacegateError, match="99") as info:
        selection_from_proto(99)
    assert info.value.error_type is ErrorType.INVALID_REQUEST


def test_face_to_proto_with_and_without_template() -> None:
    embedding = unit(3)
    with_template = face_to_proto(Face(distinct_attributes(), embedding, features()), MODEL_ID)
    assert with_template.HasField("template")
    assert with_template.template.model_id == MODEL_ID
    np.testing.assert_allclose(with_template.template.embedding, embedding, atol=1e-7)
    assert attributes_from_proto(with_template.attributes) == distinct_attributes()
    without = face_to_proto(Face(distinct_attributes(), None, features()), MODEL_ID)
    assert not without.HasField("template")
    assert without.HasField("attributes")


def test_extraction_to_proto() -> None:
    faces = [
        Face(distinct_attributes(), unit(4), features()),
        Face(distinct_attributes(), unit(5), features()),
    ]
    message = extraction_to_proto(Extraction(faces, 640, 480, MODEL_ID))
    wire = extractor_pb2.ExtractorExtractResponse.FromString(message.SerializeToString())
    assert (wire.image_width, wire.image_height, wire.model_id) == (640, 480, MODEL_ID)
    assert len(wire.faces) == 2
    for face, sent in zip(faces, wire.faces, strict=True):
        assert face.embedding is not None
        np.testing.assert_allclose(sent.template.embedding, face.embedding, atol=1e-7)
        assert sent.template.model_id == MODEL_ID
    assert not extraction_to_proto(Extraction([], 1, 1, MODEL_ID)).faces
