"""NEC ID face attributes: the typed record and its exact JSON wire form.

NEC ID renders every attribute value as a string: pixel coordinates as integers
("161") and scores/angles with six significant digits in C's ``%g`` style
("0.569824", "4.93922", "-0"), which is what :func:`nec_number` reproduces.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Box:
    left: int
    top: int
    right: int
    bottom: int

    def to_nec(self) -> dict[str, str]:
        return {
            "left": str(self.left),
            "top": str(self.top),
            "right": str(self.right),
            "bottom": str(self.bottom),
        }


@dataclass(frozen=True)
class Point:
    x: int
    y: int

    def to_nec(self) -> dict[str, str]:
        return {"x": str(self.x), "y": str(self.y)}


@dataclass(frozen=True)
class FaceAttributes:
    face_area: Box
    head_area: Box
    right_eye_center: Point
    """The subject's right eye: on the image's left for an upright, frontal face."""
    left_eye_center: Point
    frontal_face_score: float
    face_roll: float
    face_pan: float
    face_tilt: float
    face_score: float
    face_quality_score: float

    def to_nec(self) -> dict[str, Any]:
        return {
            "faceArea": self.face_area.to_nec(),
            "headArea": self.head_area.to_nec(),
            "rightEyeCenter": self.right_eye_center.to_nec(),
            "leftEyeCenter": self.left_eye_center.to_nec(),
            "frontalFaceScore": nec_number(self.frontal_face_score),
            "faceRoll": nec_number(self.face_roll),
            "facePan": nec_number(self.face_pan),
            "faceTilt": nec_number(self.face_tilt),
            "faceScore": nec_number(self.face_score),
            "faceQualityScore": nec_number(self.face_quality_score),
        }


def nec_number(value: float) -> str:
    return f"{value:g}"
