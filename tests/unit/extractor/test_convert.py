"""Extractor domain <-> protobuf conversions: templates, selections, faces and extractions
(the face attributes' conversions: tests/unit/facegate/test_faces.py)."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from extractor.convert import (
    extraction_to_proto,
    face_to_proto,
    selection_from_proto,
    selection_to_proto,
    template_from_proto,
)
from extractor.pipeline import Extraction, Face
from extractor.quality import QualityFeatures
from extractor.selection import FaceSelection
from facegate.errors import ErrorType, FacegateError
from facegate.faces import attributes_from_proto
from facegate.templates import template_to_proto
from facegate.v1 import common_pb2, extractor_pb2
from tests.support.attributes import distinct_attributes

MODEL_ID = "edgeface-s-gamma05@0123456789ab"
DIM = 8


def features() -> QualityFeatures:
    return QualityFeatures(**{name: 1.0 + i for i, name in enumerate(QualityFeatures.names())})


def unit(seed: int, dim: int = DIM) -> np.ndarray:
    vector = np.random.default_rng(seed).normal(size=dim).astype(np.float32)
    result: np.ndarray = vector / np.linalg.norm(vector)
    return result


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
