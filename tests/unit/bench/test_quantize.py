"""Pure helpers of the int8 benchmark: landmark pose, angle and quality comparisons, the rule."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.quantize import (
    MEAN_FACE,
    Variant,
    angle_differences,
    landmark_pose,
    qualifies,
    quality_change,
)
from extractor.models.catalog import Role
from extractor.pose import Pose, angles_from_params


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    y, p, r = (math.radians(a) for a in (yaw, pitch, roll))
    about_y = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    about_x = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    about_z = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    rotation: np.ndarray = about_z @ about_y @ about_x
    return rotation


def _landmarks(rotation: np.ndarray, scale: float = 1.7) -> np.ndarray:
    """MEAN_FACE seen by an affine camera, in image pixels (y down)."""
    projected = scale * MEAN_FACE @ rotation[:2].T + (120.0, 110.0)
    return np.column_stack((projected[:, 0], 2 * 110.0 - projected[:, 1]))


def test_a_frontal_mean_face_has_no_pose() -> None:
    pose = landmark_pose(_landmarks(np.eye(3)))
    assert (pose.pan, pose.tilt, pose.roll) == pytest.approx((0.0, 0.0, 0.0), abs=1e-9)


@pytest.mark.parametrize(
    "angles", [(20.0, 0.0, 0.0), (0.0, 15.0, 0.0), (0.0, 0.0, 12.0), (-25.0, 10.0, 8.0)]
)
def test_landmark_pose_reads_the_camera_as_3ddfa_does(angles: tuple[float, ...]) -> None:
    rotation = _rotation(*angles)
    camera = np.hstack((1.7 * rotation, np.zeros((3, 1))))
    expected = angles_from_params(np.concatenate((camera.ravel(), np.zeros(50))))
    pose = landmark_pose(_landmarks(rotation))
    assert (pose.pan, pose.tilt, pose.roll) == pytest.approx(
        (expected.pan, expected.tilt, expected.roll), abs=1e-6
    )
    if angles.count(0.0) == 2:  # one axis alone comes back whole, whatever its sign
        assert max(map(abs, (pose.pan, pose.tilt, pose.roll))) == pytest.approx(max(angles))


def test_mirroring_the_landmarks_flips_pan_and_roll() -> None:
    landmarks = _landmarks(_rotation(20.0, 5.0, 6.0))
    mirrored = landmarks.copy()
    mirrored[:, 0] = 250.0 - mirrored[:, 0]
    mirrored = mirrored[[1, 0, 2, 4, 3]]  # the detector lists the image-left eye first
    pose, twin = landmark_pose(landmarks), landmark_pose(mirrored)
    assert twin.pan == pytest.approx(-pose.pan, abs=1e-6)
    assert twin.roll == pytest.approx(-pose.roll, abs=1e-6)
    assert twin.tilt == pytest.approx(pose.tilt, abs=1e-6)


def test_angle_differences_reports_median_max_bias_and_correlation() -> None:
    reference = [Pose(pan=float(p), tilt=float(p % 3), roll=float(p)) for p in range(10)]
    other = [
        Pose(pan=p.pan + 1.0, tilt=p.tilt + (2.0 if i == 9 else 0.0), roll=p.roll)
        for i, p in enumerate(reference)
    ]
    out = angle_differences(reference, other)
    assert out["pan"] == {"r": 1.0, "median_abs": 1.0, "max_abs": 1.0, "median": 1.0}
    assert out["tilt"]["max_abs"] == 2.0
    assert out["tilt"]["median_abs"] == 0.0
    assert out["roll"]["median_abs"] == 0.0


def test_quality_change_skips_photos_without_a_face_and_counts_crossings() -> None:
    reference = np.array([0.50, 0.90, np.nan, 0.30])
    other = np.array([0.40, 0.91, 0.70, 0.30])
    out = quality_change(reference, other)
    assert out["crossed_min"] == 1
    assert out["max_abs"] == pytest.approx(0.10)
    assert out["median_abs"] == pytest.approx(0.01)


def test_qualifies_needs_both_accuracy_and_a_measurable_speedup() -> None:
    fp32 = {"batch1": 10.0, "batch32": 8.0}
    assert qualifies(0.9980, 0.9970, fp32, {"batch1": 6.0, "batch32": 5.0})
    assert not qualifies(0.9980, 0.9969, fp32, {"batch1": 6.0, "batch32": 5.0})
    assert not qualifies(0.9980, 0.9980, fp32, {"batch1": 9.5, "batch32": 5.0})


def test_variant_keys_name_every_setting() -> None:
    keys = {
        Variant(Role.POSE, "", per_channel=False).key,
        Variant(Role.POSE, "", per_channel=True).key,
        Variant(Role.POSE, "", True, True, ("Conv",)).key,
    }
    assert keys == {"pt-all", "pc-all", "pc-rr-conv"}
