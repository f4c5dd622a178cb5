"""Face attributes that more than one test file uses: NEC ID's published example (as
rendered, and values it could have been rendered from) and a record whose every value
tells its field apart."""

from __future__ import annotations

from typing import Any

from facegate.faces import Box, FaceAttributes, Point

SPEC_ATTRIBUTES: dict[str, Any] = {
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
"""The "attributes" object of the spec's Register Subject example response
(tests/unit/gateway/rest/test_attributes_wire.py checks it against the spec text)."""


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
