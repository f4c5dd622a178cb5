"""Five-point alignment to the 112 x 112 ArcFace crop that the recognizers were trained on."""

from __future__ import annotations

import math

import cv2
import numpy as np

CROP_SIZE = 112
# Landmark positions of the standard ArcFace 112 x 112 crop (insightface's reference).
ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)
# Crop pixels per source pixel at which a face is warped. Warping straight from a much
# larger face aliases, so it is shrunk to this scale first; and any image in which the
# face's crop scale is at most this (a reduced decode included) gives the same crop.
FULL_DETAIL_SCALE = 0.5


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares rotation + uniform scale + translation mapping ``src`` onto ``dst``.

    Umeyama's closed form; returns the 2 x 3 matrix for ``cv2.warpAffine``.
    """
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    covariance = dst_c.T @ src_c / len(src)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1.0
    rotation = u @ sign @ vt
    variance = float((src_c**2).sum() / len(src))
    scale = float(np.trace(np.diag(singular) @ sign)) / variance if variance > 0 else 1.0
    matrix = np.empty((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = dst_mean - scale * rotation @ src_mean
    return matrix


def crop_scale(landmarks: np.ndarray) -> float:
    """Crop pixels per image pixel of the alignment of these landmarks."""
    return _scale_of(similarity_transform(landmarks, ARCFACE_TEMPLATE))


def _scale_of(matrix: np.ndarray) -> float:
    return math.sqrt(abs(float(np.linalg.det(matrix[:, :2]))))


def face_reduction(landmarks: np.ndarray, reductions: tuple[int, ...], coarsest: int) -> int:
    """The coarsest of ``reductions``, no coarser than ``coarsest``, at which the face
    with these landmarks (full-scale pixels) is still read at full detail; 1 for a face
    too small to have full detail at any scale."""
    scale = crop_scale(landmarks)
    fitting = [r for r in reductions if r <= coarsest and scale * r <= FULL_DETAIL_SCALE]
    return max(fitting, default=1)


def align_face(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The 112 x 112 BGR crop of the face whose five landmarks are given (image pixels)."""
    matrix = similarity_transform(landmarks, ARCFACE_TEMPLATE)
    scale = _scale_of(matrix)
    if scale < FULL_DETAIL_SCALE:
        image, matrix = _prescale(image, matrix, scale)
    return cv2.warpAffine(
        image,
        matrix,
        (CROP_SIZE, CROP_SIZE),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )


def _prescale(image: np.ndarray, matrix: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Area-downsample only the region the crop reads from, and fold that into ``matrix``."""
    inverse = cv2.invertAffineTransform(matrix)
    corners = np.array([[0, 0], [CROP_SIZE, 0], [0, CROP_SIZE], [CROP_SIZE, CROP_SIZE]], float)
    source = corners @ inverse[:, :2].T + inverse[:, 2]
    height, width = image.shape[:2]
    x0, y0 = np.floor(source.min(axis=0)).astype(int) - 2
    x1, y1 = np.ceil(source.max(axis=0)).astype(int) + 2
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return image, matrix
    factor = scale / FULL_DETAIL_SCALE
    region = image[y0:y1, x0:x1]
    size = (max(1, round((x1 - x0) * factor)), max(1, round((y1 - y0) * factor)))
    small = cv2.resize(region, size, interpolation=cv2.INTER_AREA)
    fx, fy = size[0] / (x1 - x0), size[1] / (y1 - y0)
    # resize maps pixel centres: small(u, v) = image(x0 + (u + 0.5) / fx - 0.5, ...).
    to_original = np.array(
        [[1 / fx, 0, x0 + 0.5 / fx - 0.5], [0, 1 / fy, y0 + 0.5 / fy - 0.5], [0, 0, 1]]
    )
    composed = matrix @ to_original
    return small, composed
