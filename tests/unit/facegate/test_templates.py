"""A template's message, built from its packed wire form, is exactly the message the
repeated field would hold."""

from __future__ import annotations

import numpy as np
import pytest

from facegate.templates import template_to_proto
from facegate.v1 import common_pb2


@pytest.mark.parametrize(
    ("model_id", "dim"),
    [("edgeface-s@b23dc89244b1", 512), ("", 3), ("modèle@x", 1), ("m", 0), ("m" * 300, 40)],
)
def test_the_message_equals_the_slow_path(model_id: str, dim: int) -> None:
    vector = np.random.default_rng(dim).standard_normal(dim).astype(np.float32)
    expected = common_pb2.Template(model_id=model_id, embedding=vector.tolist())
    built = template_to_proto(model_id, vector)
    assert built == expected
    assert built.SerializeToString(deterministic=True) == expected.SerializeToString(
        deterministic=True
    )
    assert np.array_equal(np.asarray(built.embedding, dtype=np.float32), vector)


def test_float64_and_2d_vectors_are_sent_as_float32() -> None:
    vector = np.array([[0.1, -0.2], [0.3, 1e-40]])
    built = template_to_proto("m", vector)
    assert list(built.embedding) == np.asarray(vector, dtype=np.float32).ravel().tolist()
