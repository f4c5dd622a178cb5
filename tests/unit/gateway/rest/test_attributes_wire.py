"""NEC attribute wire form as the REST shim renders it: C ``%g`` numbers and the exact
JSON shape of the spec's example, from the attributes the extractor computes through the
float32 protobuf that carries them to the shim."""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from facegate.faces import Box, FaceAttributes, Point, attributes_to_proto
from gateway.rest.convert_common import face_attributes_to_json, nec_number
from tests.support.attributes import SPEC_ATTRIBUTES, spec_example_attributes

_REPO = Path(__file__).resolve().parents[4]
SPEC_CANDIDATES = [
    _REPO / "shared" / "spec" / "necid-api-v1.1-published.rst",
    _REPO.parent / "shared" / "spec" / "necid-api-v1.1-published.rst",
]


def rendered(attributes: FaceAttributes) -> dict[str, Any]:
    """What the REST shim sends for attributes the extractor computed."""
    return face_attributes_to_json(attributes_to_proto(attributes))


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.569824, "0.569824"),
        (4.939219, "4.93922"),
        (-9.34863, "-9.34863"),
        (7.613, "7.613"),
        (0.86541, "0.86541"),
        (-0.0, "-0"),
        (0.0, "0"),
        (1.0, "1"),
        (90.0, "90"),
        (-180.0, "-180"),
        (0.9999996, "1"),
        (123456.7, "123457"),
        (1234567.0, "1.23457e+06"),
        (0.0001, "0.0001"),
        (0.00001234, "1.234e-05"),
    ],
)
def test_nec_number_known_values(value: float, text: str) -> None:
    assert nec_number(value) == text


def _libc_g() -> Any:
    name = ctypes.util.find_library("c")
    if name is None:
        pytest.skip("no C library to compare with")
    libc = ctypes.CDLL(name)

    def render(value: float) -> str:
        buffer = ctypes.create_string_buffer(64)
        libc.snprintf(buffer, 64, b"%g", ctypes.c_double(value))
        return buffer.value.decode()

    return render


def test_nec_number_matches_c_printf_g() -> None:
    render = _libc_g()
    rng = np.random.default_rng(3)
    values = np.concatenate(
        [
            rng.uniform(-180, 180, 300),
            rng.uniform(0, 1, 300),
            rng.normal(0, 1, 100) * 10.0 ** rng.integers(-8, 9, 100),
            [-0.0, 0.0, 0.5, 2.5, 1e-5, 999999.5, 1e6],
        ]
    )
    mismatches = [(v, nec_number(v), render(v)) for v in map(float, values)]
    mismatches = [m for m in mismatches if m[1] != m[2]]
    assert not mismatches, mismatches[:5]


@pytest.mark.parametrize("value", [0.569824, 4.93922, -9.34863, 7.613, 0.999591, 0.86541, -0.0])
def test_float32_transport_keeps_the_rendering(value: float) -> None:
    """The proto carries attributes as float32: six significant digits survive it."""
    attributes = replace(spec_example_attributes(), face_roll=value, face_score=value)
    sent = rendered(attributes)
    assert sent["faceRoll"] == nec_number(value)
    assert sent["faceScore"] == nec_number(value)


def test_box_and_point_render_integers() -> None:
    attributes = replace(
        spec_example_attributes(), face_area=Box(1, 2, 30, 40), right_eye_center=Point(-3, 7)
    )
    sent = rendered(attributes)
    assert sent["faceArea"] == {"left": "1", "top": "2", "right": "30", "bottom": "40"}
    assert sent["rightEyeCenter"] == {"x": "-3", "y": "7"}


def test_rendering_equals_spec_example() -> None:
    sent = rendered(spec_example_attributes())
    assert sent == SPEC_ATTRIBUTES
    assert list(sent) == list(SPEC_ATTRIBUTES)
    assert json.loads(json.dumps(sent)) == SPEC_ATTRIBUTES


def test_rendering_is_all_strings() -> None:
    def leaves(node: Any) -> list[Any]:
        if isinstance(node, dict):
            return [leaf for value in node.values() for leaf in leaves(value)]
        return [node]

    assert all(isinstance(leaf, str) for leaf in leaves(rendered(spec_example_attributes())))


def test_spec_example_is_what_the_published_spec_shows() -> None:
    """Guards SPEC_ATTRIBUTES against drifting from the spec text (when it is available)."""
    spec = next((p for p in SPEC_CANDIDATES if p.is_file()), None)
    if spec is None:
        pytest.skip("NEC spec not available in this checkout")
    text = spec.read_text(encoding="utf-8")
    start = text.index('"attributes": {') + len('"attributes": ')
    depth = 0
    for end in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[end], 0)
        if depth == 0:
            break
    example = json.loads(text[start : end + 1])
    assert example == SPEC_ATTRIBUTES
    # Every attribute key the spec documents is one that the renderer produces.
    section = text[text.index("Face Attributes\n~~~") :]
    section = section[: section.index(".. note::")]
    documented = set(re.findall(r"^:(\w+):", section, re.M))
    assert len(documented) >= 9
    assert documented <= set(rendered(spec_example_attributes()))
