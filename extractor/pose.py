"""Head pose from 3DDFA (MobileNet-1, 120 x 120): pan, tilt and roll in degrees.

3DDFA regresses 62 parameters of a 3D morphable model; the first 12 are a 3 x 4 camera
matrix whose rotation part gives the head's Euler angles. The crop follows 3DDFA_V2's
rule for a detector box (a square 1.58 times the box's mean side, shifted down by 14%).

Signs, as measured (tests/unit/extractor/test_pose_signs.py and test_pipeline.py;
"subject's" means the photographed person's):
- pan (yaw): positive when the subject turns towards their right, i.e. the face points
  towards the image's left. Mirroring the photo flips the sign.
- tilt (pitch): positive when the subject looks down.
- roll: positive when the head is rotated counter-clockwise on screen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from extractor.models.catalog import Preprocess
from extractor.runtime import OnnxModel

CROP = 120


@dataclass(frozen=True)
class Pose:
    pan: float
    tilt: float
    roll: float


def roi_from_box(box: np.ndarray) -> tuple[float, float, float, float]:
    left, top, right, bottom = (float(v) for v in box[:4])
    old_size = (right - left + bottom - top) / 2.0
    center_x = (left + right) / 2.0
    center_y = (top + bottom) / 2.0 + old_size * 0.14
    size = old_size * 1.58
    return (center_x - size / 2, center_y - size / 2, center_x + size / 2, center_y + size / 2)


def crop_roi(image: np.ndarray, roi: tuple[float, float, float, float]) -> np.ndarray:
    """The ROI resampled to 120 x 120 by one affine warp (zero outside the image)."""
    x0, y0, x1, _ = roi
    scale = CROP / max(x1 - x0, 1e-6)
    if scale < 0.5:
        # warpAffine has no area filter: shrink the region first so large faces do not alias.
        return _crop_large(image, roi)
    matrix = np.array([[scale, 0.0, -x0 * scale], [0.0, scale, -y0 * scale]])
    return cv2.warpAffine(image, matrix, (CROP, CROP), flags=cv2.INTER_LINEAR)


def _crop_large(image: np.ndarray, roi: tuple[float, float, float, float]) -> np.ndarray:
    height, width = image.shape[:2]
    x0, y0, x1, y1 = (round(v) for v in roi)
    canvas = np.zeros((y1 - y0, x1 - x0, 3), dtype=np.uint8)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if sx1 > sx0 and sy1 > sy0:
        canvas[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = image[sy0:sy1, sx0:sx1]
    return cv2.resize(canvas, (CROP, CROP), interpolation=cv2.INTER_AREA)


def angles_from_params(params: np.ndarray) -> Pose:
    """Euler angles of the camera matrix in the first 12 (de-normalised) parameters."""
    camera = params[:12].reshape(3, 4)
    r1, r2 = camera[0, :3], camera[1, :3]
    r1 = r1 / max(float(np.linalg.norm(r1)), 1e-12)
    r2 = r2 / max(float(np.linalg.norm(r2)), 1e-12)
    rotation = np.stack((r1, r2, np.cross(r1, r2)))
    if abs(rotation[2, 0]) < 0.998:
        yaw = math.asin(float(np.clip(rotation[2, 0], -1.0, 1.0)))
        pitch = math.atan2(rotation[2, 1] / math.cos(yaw), rotation[2, 2] / math.cos(yaw))
        roll = math.atan2(rotation[1, 0] / math.cos(yaw), rotation[0, 0] / math.cos(yaw))
    else:  # gimbal lock: the face is seen exactly from the side
        yaw = math.copysign(math.pi / 2, float(rotation[2, 0]))
        pitch = math.atan2(float(rotation[0, 1]), float(rotation[0, 2]))
        roll = 0.0
    return Pose(pan=math.degrees(yaw), tilt=math.degrees(pitch), roll=math.degrees(roll))


class PoseEstimator:
    def __init__(
        self, model: OnnxModel, pre: Preprocess, param_mean: np.ndarray, param_std: np.ndarray
    ) -> None:
        self.model = model
        self.pre = pre
        self.param_mean = param_mean.astype(np.float32)
        self.param_std = param_std.astype(np.float32)
        self._mean = np.asarray(pre.mean, dtype=np.float32)
        self._scale = 1.0 / np.asarray(pre.std, dtype=np.float32)

    def crop(self, image: np.ndarray, box: np.ndarray) -> np.ndarray:
        """The 120 x 120 input of the face with this detector box (image pixels)."""
        return crop_roi(image, roi_from_box(box))

    def estimate(self, crops: np.ndarray) -> list[Pose]:
        """``crops``: N x 120 x 120 x 3 BGR uint8 from :meth:`crops`."""
        pixels = crops if self.pre.channel_order == "BGR" else crops[..., ::-1]
        tensor = ((pixels.astype(np.float32) - self._mean) * self._scale).transpose(0, 3, 1, 2)
        raw = np.asarray(self.model.run(np.ascontiguousarray(tensor))[0], dtype=np.float32)
        params = raw * self.param_std + self.param_mean
        return [angles_from_params(p) for p in params]
