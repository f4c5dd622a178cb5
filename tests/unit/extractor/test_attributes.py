"""NEC attribute wire form: C ``%g`` numbers and the exact JSON shape of the spec's example."""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from extractor.attributes import Box, FaceAttributes, Point, nec_number

_REPO = Path(__file__).resolve().parents[3]
SPEC_CANDIDATES = [
    _REPO / "shared" / "spec" / "necid-api-v1.1-published.rst",
    _REPO.parent / "shared" / "spec" / "necid-api-v1.1-published.rst",
]

# The "attributes" object of the spec's Register Subject example response.
SPEC_EXAMPLE: dict[str, Any] = {
    "faceArea": {"left": "161", "top": "156", "right": "318", "bottom": "313"},
    "headArea": {"left": "131", "top": "86", "right": "345", "bottom": "343"},
    "rightEyeCenter": {"x": "195", "y": "198"},
    "leftEyeCenter": {"x": "276", "y": "191"},
    "frontalFaceScore": "0.569824",
    "faceRoll": "4.93922",
    "facePan": "-9.34863",
    "faceTilt": "7.613",
    "faceScore": "0.999591",
    "faceQualityScore": "0.86541",
}


def spec_example_attributes() -> FaceAttributes:
    """Values that the spec example could have been rendered from (more digits than shown)."""
    return FaceAttributes(
        face_area=Box(161, 156, 318, 313),
        head_area=Box(131, 86, 345, 343),
        right_eye_center=Point(195, 198),
        left_eye_center=Point(276, 191),
        frontal_face_score=0.5698241,
        face_roll=4.939219,
        face_pan=-9.348631,
        face_tilt=7.613,
        face_score=0.99959104,
        face_quality_score=0.8654099,
    )


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


def test_float32_transport_keeps_the_rendering() -> None:
    """The proto carries attributes as float32: six significant digits survive it."""
    for value in (0.569824, 4.93922, -9.34863, 7.613, 0.999591, 0.86541, -0.0):
        assert nec_number(float(np.float32(value))) == nec_number(value)


def test_box_and_point_render_integers() -> None:
    assert Box(1, 2, 30, 40).to_nec() == {"left": "1", "top": "2", "right": "30", "bottom": "40"}
    assert Point(-3, 7).to_nec() == {"x": "-3", "y": "7"}


def test_to_nec_equals_spec_example() -> None:
    rendered = spec_example_attributes().to_nec()
    assert rendered == SPEC_EXAMPLE
    assert list(rendered) == list(SPEC_EXAMPLE)
    assert json.loads(json.dumps(rendered)) == SPEC_EXAMPLE


def test_to_nec_is_all_strings() -> None:
    def leaves(node: Any) -> list[Any]:
        if isinstance(node, dict):
            return [leaf for value in node.values() for leaf in leaves(value)]
        return [node]

    assert all(isinstance(leaf, str) for leaf in leaves(spec_example_attributes().to_nec()))


def test_spec_example_is_what_the_published_spec_shows() -> None:
    """Guards SPEC_EXAMPLE above against drifting from the spec text (when it is available)."""
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
    assert example == SPEC_EXAMPLE
    # Every attribute key the spec documents is one that to_nec() produces.
    section = text[text.index("Face Attributes\n~~~") :]
    section = section[: section.index(".. note::")]
    documented = set(re.findall(r"^:(\w+):", section, re.M))
    assert len(documented) >= 9
    assert documented <= set(SPEC_EXAMPLE)
